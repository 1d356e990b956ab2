"""Train the encoder with triplet loss: `python -m training.train --out runs/NAME [options]`.

The product is the encoder; the triplet Siamese network (three inputs, one shared encoder, a distance
layer) is the training scaffolding. Triplets are mined online in P identities x K images batches
(batch-hard) or drawn at random (`--mining random`, the seed notebook's way). The weights are kept
whenever validation pair accuracy (PROTOCOL.md fold 7) beats the best so far.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from . import data as D

log = logging.getLogger("training.train")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(D.LFW), help="folder-per-person dataset (LFW: protocol split)")
    p.add_argument("--out", required=True, help="weights folder to write")
    p.add_argument("--steps", type=int, default=None, help="training steps (default: from --epochs)")
    p.add_argument("--epochs", type=float, default=30.0, help="passes over the training images")
    p.add_argument("--people", type=int, default=32, help="P: identities with 2+ images per batch")
    p.add_argument("--per-person", type=int, default=4, help="K: images per identity in a batch")
    p.add_argument("--singletons", type=int, default=32, help="extra one-image people per batch (negatives)")
    p.add_argument("--mining", choices=("batch-hard", "random"), default="batch-hard")
    p.add_argument("--margin", type=float, default=0.3, help="triplet loss margin (Euclidean, unit vectors)")
    p.add_argument("--cosface-weight", type=float, default=0.0, help="weight of the auxiliary CosFace loss")
    p.add_argument("--teacher", default=None, help=".npz of teacher embeddings (training.teacher)")
    p.add_argument("--distill-weight", type=float, default=0.0, help="weight of the teacher-matching loss")
    p.add_argument("--distill-form", choices=("l2", "relational"), default="l2",
                   help="match the teacher's unit vectors (l2) or only its batch similarity matrix (relational)")
    p.add_argument("--teacher-flip", action="store_true",
                   help="a mirrored training view gets the teacher's embedding of the mirrored image "
                        "(needs a teacher file made with --flip)")
    p.add_argument("--ema", type=float, default=0.0,
                   help="validate and keep an exponential moving average of the weights with this momentum "
                        "(0: the raw weights)")
    p.add_argument("--extra", default=None,
                   help="unlabelled face crops to distil from (utkface-adults); distillation only, never triplets")
    p.add_argument("--extra-per-batch", type=int, default=32, help="unlabelled faces added to each batch")
    p.add_argument("--no-real-augment", action="store_true", help="framing and flip only (no photo faults)")
    p.add_argument("--wild", default=str(D.WILD),
                   help="PROTOCOL.md B validation photos: the checkpoint is chosen on LFW fold 7 and these pairs "
                        "together ('' for fold 7 alone); never trained on")
    p.add_argument("--input-size", type=int, default=64)
    p.add_argument("--widths", default="32,64,128,160")
    p.add_argument("--embedding-dim", type=int, default=128)
    p.add_argument("--head", choices=("flatten", "gap"), default="flatten",
                   help="embedding head: flatten the last feature map, or global average pooling")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--precision", choices=("bfloat16", "float32"), default="float32",
                   help="bfloat16 is 7x slower on CPUs without AVX512-BF16 (measured here)")
    p.add_argument("--jit", choices=("auto", "on", "off"), default="auto",
                   help="XLA/JIT-compile the training step (auto: off on TensorFlow, where XLA on this CPU took "
                        "35 s to compile and ~5 s a step against ~1 s; on for JAX and PyTorch)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2, help="processes for face extraction")
    p.add_argument("--push-to-hub", metavar="USER/NAME", default=None, help="push the folder after training")
    return p.parse_args(argv)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    t_start = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    train_set, val_pairs, val_set, split_info = load_training_data(Path(args.data), args.workers, args.seed)
    wild_val = D.wild_validation(Path(args.wild), workers=args.workers) if args.wild else None
    log.info("train: %d people, %d images; validation: %d LFW pairs%s", len(train_set.names),
             len(train_set.paths), len(val_pairs[0]), f" + {len(wild_val[2][0])} wild pairs" if wild_val else "")

    import keras

    from facesim.model import Encoder, ModelConfig, build_encoder

    from .fit import TripletBatches, ValidationCheckpoint
    from .siamese import CosFaceHead, TripletTrainer

    keras.utils.set_random_seed(args.seed)
    config = ModelConfig(input_size=args.input_size, widths=tuple(int(w) for w in args.widths.split(",")),
                         embedding_dim=args.embedding_dim, head=args.head)
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if args.precision == "bfloat16" else "float32")
    encoder = build_encoder(config)
    extra = None
    if args.extra and args.distill_weight > 0:
        extra = D.extra_faceset(Path(args.extra), workers=args.workers)
        log.info("distilling also from %d unlabelled faces of %s", len(extra[1]), args.extra)
    teacher = load_teacher(args.teacher, train_set, extra, flip=args.teacher_flip) if args.distill_weight > 0 else None
    if teacher is not None and teacher.shape[-1] != config.embedding_dim:
        raise SystemExit(f"--embedding-dim must equal the teacher's ({teacher.shape[-1]}) for distillation")

    n_labelled = args.people * args.per_person + args.singletons
    batch = n_labelled + (args.extra_per_batch if extra is not None else 0)
    steps = args.steps or max(1, int(args.epochs * len(train_set.paths) / batch))
    warmup = min(300, steps // 10)
    schedule = keras.optimizers.schedules.CosineDecay(0.0, steps - warmup, alpha=0.01, warmup_target=args.lr,
                                                      warmup_steps=warmup)
    cosface = CosFaceHead(len(train_set.names)) if args.cosface_weight > 0 else None
    trainer = TripletTrainer(encoder, mining=args.mining, margin=args.margin, distill_weight=args.distill_weight,
                             distill_form=args.distill_form, cosface=cosface, cosface_weight=args.cosface_weight)
    trainer.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=args.weight_decay),
                    jit_compile=_jit(args.jit, keras.backend.backend()))

    weights_path = out / config.weights_file
    groups = person_groups(train_set)
    batches = TripletBatches(lambda rng: make_batch(train_set, args, rng, teacher, groups, extra), args.seed, steps)
    checkpoint = ValidationCheckpoint(Encoder(config, encoder), encoder, weights_path, val_set, val_pairs, wild_val,
                                      every=args.eval_every, steps=steps, batch=batch, ema=args.ema)
    log.info("training %d steps of %d images (%s mining, %s, Keras backend %s)", steps, batch, args.mining,
             args.precision, keras.backend.backend())
    trainer.fit(batches, epochs=1, verbose=0, callbacks=[checkpoint])
    history, best = checkpoint.history, checkpoint.best
    wall = time.time() - t_start
    log.info("best validation accuracy %.4f at step %d; %.1f min", best["val_accuracy"], best["step"], wall / 60)

    # The folder: weights (already written), config calibrated on validation, curves, metrics, card.
    keras.mixed_precision.set_global_policy("float32")
    from .tflite import with_inference, write_inference_file

    encoder.load_weights(weights_path)
    if keras.backend.backend() == "tensorflow":  # the converter needs TensorFlow
        config = with_inference(config, write_inference_file(out, config, encoder))
    else:
        log.info("no encoder.tflite written (needs TensorFlow): python -m training.tflite --weights %s", out)
    final = Encoder.load_from(config, weights_path)
    command = "python -m training.train " + " ".join(shlex.quote(a) for a in argv)
    info = {
        "training": {"command": command, "wall_minutes": round(wall / 60, 1), "steps": steps,
                     "best_step": best["step"], "seed": args.seed, "batch": batch, "mining": args.mining,
                     "margin": args.margin, "cosface_weight": args.cosface_weight,
                     "distill_weight": args.distill_weight, "distill_form": args.distill_form,
                     "teacher_flip": args.teacher_flip, "ema": args.ema, "head": args.head,
                     "precision": args.precision, "keras_backend": keras.backend.backend(),
                     "extra": Path(args.extra).name if extra is not None else None,
                     "extra_faces": len(extra[1]) if extra is not None else 0,
                     "real_augment": not args.no_real_augment,
                     "host_cpus": os.cpu_count()},
        "data": split_info,
    }
    from .evaluate import calibrate_folder

    calibrate_folder(out, final, val_set, val_pairs, info=info)
    (out / "history.json").write_text(json.dumps(history, indent=1) + "\n")
    plot_history(history, out / "training_curves.png")
    if args.push_to_hub:
        # The Hub gets only evaluated folders: run the full protocol first, then push.
        from facesim import FaceSimError

        from .evaluate import evaluate, format_metrics, write_results
        from .push import push

        metrics = evaluate(out, Path(args.data), D.ATT)
        log.info("\n%s", format_metrics(metrics))
        write_results(out, metrics)
        try:
            print(f"pushed: {push(out, args.push_to_hub)}")
        except FaceSimError as exc:
            log.error("push failed: %s", exc)
            return 2
    return 0


def _jit(choice: str, backend: str) -> bool:
    return choice == "on" or (choice == "auto" and backend != "tensorflow")


def load_training_data(root: Path, workers: int, seed: int, chip=None):
    """(train FaceSet, validation pairs, FaceSet holding the validation images, split description).

    Crops are cut for `chip` (the encoder's, `ModelConfig.chip`; default the small CNN's).
    """
    if (root / "pairs.txt").is_file():
        split = D.protocol_split(root)
        suffix, _ = D.cache_tag(chip or D.default_chip())
        all_faces = D.build_faceset(root, workers=workers, cache=D.CACHE_DIR / f"{root.name}_crops{suffix}.npz",
                                    chip=chip)
        train = all_faces.subset(split.train_people)
        D.check_no_leak(train.names, split.heldout_people)
        pairs = split.validation_pairs
        val_paths = sorted({p for pr in pairs for p in (pr.a, pr.b)})
        val_set = all_faces.subset({p.split("/")[0] for p in val_paths})
        vi = val_set.index()
        val_pairs = (np.array([vi[p.a] for p in pairs]), np.array([vi[p.b] for p in pairs]),
                     np.array([p.same for p in pairs]))
        info = {"dataset": "LFW deep-funneled", "protocol": "PROTOCOL.md v2",
                "train": "every image of people in no pair of folds 7-9 of pairs.txt",
                "validation": "pairs.txt fold 7 and the celeba-wild-val pairs (checkpoint and threshold)",
                "test": "pairs.txt folds 8-9",
                "train_people": len(train.names), "train_images": len(train.paths)}
        return train, val_pairs, val_set, info
    # Any other folder-per-person dataset: hold out a seeded 25% of people for validation.
    people = D.list_people(root)
    names = sorted(people)
    rng = np.random.default_rng(seed)
    held = set(rng.choice(names, size=max(2, len(names) // 4), replace=False).tolist())
    faces = D.build_faceset(root, people=people, workers=workers, chip=chip)
    train = faces.subset([n for n in names if n not in held])
    D.check_no_leak(train.names, held)
    val_set = faces.subset(held)
    val_pairs = make_pairs(val_set.labels, 200, rng)
    info = {"dataset": str(root.name), "train_people": len(train.names), "train_images": len(train.paths),
            "validation": f"{len(held)} held-out people, seeded pairs"}
    return train, val_pairs, val_set, info


def make_pairs(labels: np.ndarray, n: int, rng: np.random.Generator):
    """n/2 same and n/2 different pairs of indices drawn from `labels`."""
    from .siamese import random_triplets

    t = random_triplets(labels, n // 2, rng)
    a = np.concatenate([t[:, 0], t[:, 0]])
    b = np.concatenate([t[:, 1], t[:, 2]])
    return a, b, np.concatenate([np.ones(n // 2, bool), np.zeros(n // 2, bool)])


def load_teacher(path, faces, extra=None, *, flip: bool = False):
    """Teacher embeddings, centred on their mean and normalised: rows of faces.paths, then of the extra keys.

    Returns (N, D), or with `flip` (N, 2, D): the plain and the mirrored image's embedding.
    """
    if path is None:
        raise SystemExit("--distill-weight needs --teacher FILE (python -m training.teacher)")
    with np.load(path, allow_pickle=False) as z:
        if flip and "embeddings_flip" not in z:
            raise SystemExit(f"{path} has no mirrored views: python -m training.teacher --flip --out {path}")
        views = np.stack([z["embeddings"], z["embeddings_flip"]], axis=1) if flip else z["embeddings"][:, None]
        lookup = dict(zip(z["paths"].tolist(), views))
    keys = list(faces.paths) + (list(extra[1]) if extra is not None else [])
    missing = [p for p in keys if p not in lookup]
    if missing:
        raise SystemExit(f"teacher file lacks {len(missing)} training images, e.g. {missing[:2]}")
    t = np.stack([lookup[p] for p in keys]).astype(np.float32)
    t -= t[:, 0].mean(axis=0)  # uncentred teacher targets collapse the student
    t /= np.linalg.norm(t, axis=-1, keepdims=True)
    return t if flip else t[:, 0]


def make_batch(faces, args, rng: np.random.Generator, teacher=None, groups=None, extra=None) -> dict:
    """One augmented batch: P people x K images (+ singletons, + unlabelled extra faces), or random triplets."""
    from .augment import augment

    real = not args.no_real_augment
    if args.mining == "random":  # anchors, positives, negatives in thirds
        from .siamese import random_triplets

        t = random_triplets(faces.labels, args.people * args.per_person // 3 + 1, rng)
        idx = np.concatenate([t[:, 0], t[:, 1], t[:, 2]])
        return {"x": augment(faces.crops[idx], rng, args.input_size, real=real),
                "labels": faces.labels[idx], "teacher": np.zeros((len(idx), 1), np.float32)}
    idx = _pk_indices(groups or person_groups(faces), args.people, args.per_person, args.singletons, rng)
    crops, rows = faces.crops[idx], idx
    if extra is not None:
        e = rng.choice(len(extra[0]), size=args.extra_per_batch, replace=False)
        crops = np.concatenate([crops, extra[0][e]])
        rows = np.concatenate([idx, len(faces.paths) + e])
    flips = rng.random(len(rows)) < 0.5
    if teacher is None:
        target = np.zeros((len(rows), 1), np.float32)
    else:  # (N, 2, D) holds the mirrored image's embedding too: the student's view gets its own target
        target = teacher[rows, flips.astype(int)] if teacher.ndim == 3 else teacher[rows]
    return {"x": augment(crops, rng, args.input_size, real=real, flips=flips), "labels": faces.labels[idx],
            "teacher": target}


def person_groups(faces) -> tuple[list[np.ndarray], np.ndarray]:
    """Image indices per person with 2+ images, and the indices of one-image people."""
    order = np.argsort(faces.labels, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(faces.labels[order])) + 1)
    multi = [g for g in groups if len(g) >= 2]
    single = np.concatenate([g for g in groups if len(g) == 1] or [np.zeros(0, np.int64)])
    return multi, single


def _pk_indices(groups, p: int, k: int, singletons: int, rng) -> np.ndarray:
    multi, single = groups
    chosen = rng.choice(len(multi), size=min(p, len(multi)), replace=False)
    idx = [rng.choice(multi[c], size=k, replace=len(multi[c]) < k) for c in chosen]
    if singletons and len(single):
        idx.append(rng.choice(single, size=min(singletons, len(single)), replace=False))
    return np.concatenate(idx)


def plot_history(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not history:
        return
    steps = [h["step"] for h in history]
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    ax[0].plot(steps, [h["triplet_loss"] for h in history], label="triplet loss")
    ax[0].plot(steps, [h["total_loss"] for h in history], label="total loss")
    ax[0].set_xlabel("step")
    ax[0].legend()
    ax[1].plot(steps, [h["val_accuracy"] for h in history], color="C2")
    ax[1].set_xlabel("step")
    ax[1].set_ylabel("validation pair accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
