"""Fine-tune the ported dlib ResNet with triplet loss: `python -m training.finetune --from runs/dlib-port --out DIR`.

Transfer learning, as the seed notebook did it (a pretrained backbone, then the triplet Siamese network):
the encoder starts from dlib's face ResNet (`python -m training.dlib_port`), and training moves it only as
far as the data supports, with three things that keep it from forgetting what ~3 M faces taught it:

- a pull towards the original descriptors: the mean squared distance between the network's descriptor of
  each training view and the unchanged port's descriptor of the same (mirrored or not) crop, computed once
  before training through the exported graph;
- a small learning rate (Adam, 1e-5 by default, cosine-decayed);
- the early stages frozen (stem and the 32- and 64-filter stages by default: generic edges and textures).

Batches: batch-hard triplet loss over P LFW training people x K images (the protocol's split; a check
refuses any held-out person) plus unlabelled utkface faces that serve as negatives only (each its own
identity), all with the photo-fault augmentation of `training.augment`. The checkpoint is chosen on LFW
fold 7 and the wild validation pairs together, as `training.train` does; the folder written has the
Keras weights, the OpenCV graph, config.json and a validation-calibrated threshold
(`python -m training.evaluate` then measures every protocol figure).
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

log = logging.getLogger("training.finetune")


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m training.finetune", description=__doc__.split("\n")[0])
    p.add_argument("--from", dest="source", default="runs/dlib-port",
                   help="the ported weights folder (python -m training.dlib_port --out DIR)")
    p.add_argument("--out", required=True, help="weights folder to write")
    p.add_argument("--data", default=str(D.LFW))
    p.add_argument("--wild", default=str(D.WILD), help="validation photos for checkpoint choice ('' for none)")
    p.add_argument("--extra", default=str(D.UTKFACE), help="unlabelled faces used as negatives ('' for none)")
    p.add_argument("--steps", type=int, default=1200)
    p.add_argument("--people", type=int, default=12)
    p.add_argument("--per-person", type=int, default=4)
    p.add_argument("--extra-per-batch", type=int, default=12, help="unlabelled negatives in each batch")
    p.add_argument("--margin", type=float, default=0.2, help="triplet margin on the raw descriptors")
    p.add_argument("--lr", type=float, default=1e-5)
    p.add_argument("--pull-weight", type=float, default=1.0,
                   help="weight of the squared distance to the original descriptors (0: none)")
    p.add_argument("--freeze", type=int, default=2,
                   help="stages kept frozen after the stem (0-5; 2 = the 32- and 64-filter stages)")
    p.add_argument("--no-real-augment", action="store_true", help="framing and flips only")
    p.add_argument("--eval-every", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2, help="processes for face extraction")
    return p.parse_args(argv)


def original_descriptors(folder: Path, crops: np.ndarray, batch: int = 32) -> np.ndarray:
    """(N, 2, 128) the unchanged port's raw descriptors of each crop and of its mirror (OpenCV graph).

    Cached under .cache/ by the graph's and the crops' checksums.
    """
    import hashlib

    from facesim.dnn import lent_net
    from facesim.model import ModelConfig, file_sha256

    from .progress import progress

    config = ModelConfig.read(folder)
    graph = folder / config.inference_file
    key = hashlib.sha256(file_sha256(graph).encode() + crops.tobytes()).hexdigest()[:16]
    cache = D.CACHE_DIR / f"original_descriptors_{key}.npy"
    if cache.is_file():
        return np.load(cache)
    out = np.empty((len(crops), 2, config.embedding_dim), np.float32)
    with lent_net(str(graph)) as net:
        for i in progress(range(0, len(crops), batch), total=-(-len(crops) // batch), desc="original descriptors"):
            x = crops[i : i + batch].astype(np.float32)
            for v, view in enumerate((x, x[:, :, ::-1])):
                net.setInput(np.ascontiguousarray(view.transpose(0, 3, 1, 2)))
                out[i : i + len(x), v] = net.forward().reshape(len(x), -1)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache.with_suffix(".tmp.npy"), out)
    cache.with_suffix(".tmp.npy").replace(cache)
    return out


#: The starting point's figures a card shows beside the fine-tuned model's ("before and after").
BEFORE_KEYS = ("pair_accuracy", "roc_auc", "triplet_accuracy", "att_auc", "wild_pair_accuracy", "wild_roc_auc",
               "wild_triplet_accuracy", "threshold", "validation_accuracy")


def starting_point(source: Path) -> dict:
    """The evaluated figures of the folder fine-tuning starts from (empty when it was not evaluated)."""
    path = source / "metrics.json"
    if not path.is_file():
        return {}
    metrics = json.loads(path.read_text())
    return {k: metrics[k] for k in BEFORE_KEYS if metrics.get(k) is not None}


def freeze(model, stages: int) -> int:
    """Make the stem and the first `stages` stages untrainable; returns the trainable parameter count."""
    for layer in model.layers:
        stage = 0 if layer.name.startswith("stem") else int(layer.name[1]) + 1 if layer.name[:1] == "s" and \
            layer.name[1:2].isdigit() else 99
        if stage <= stages:
            layer.trainable = False
    return int(sum(np.prod(v.shape) for v in model.trainable_weights))


def make_batch(faces, extra, targets, extra_targets, groups, args, rng) -> dict:
    """P people x K images + unlabelled negatives, augmented; labels (negatives: their own) and pull targets."""
    from .augment import augment
    from .train import _pk_indices

    idx = _pk_indices(groups, args.people, args.per_person, 0, rng)
    crops, labels, tgt = faces.crops[idx], faces.labels[idx], targets[idx]
    if extra is not None and args.extra_per_batch:
        e = rng.choice(len(extra), size=args.extra_per_batch, replace=False)
        crops = np.concatenate([crops, extra[e]])
        labels = np.concatenate([labels, -1 - e.astype(np.int32)])  # each its own person: a negative only
        tgt = np.concatenate([tgt, extra_targets[e]])
    flips = rng.random(len(crops)) < 0.5
    x = augment(crops, rng, crops.shape[1], real=not args.no_real_augment, flips=flips)
    return {"x": x, "labels": labels.astype(np.int32), "teacher": tgt[np.arange(len(tgt)), flips.astype(int)]}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    t_start = time.time()
    source, out = Path(args.source), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    import keras

    from facesim.model import Encoder, ModelConfig, build_encoder

    from .fit import TripletBatches, ValidationCheckpoint
    from .siamese import TripletTrainer
    from .train import load_training_data, person_groups, plot_history

    config = ModelConfig.read(source)
    if config.architecture != "dlib_resnet" or not config.inference_file:
        raise SystemExit(f"{source} is not a ported dlib ResNet folder (python -m training.dlib_port --out {source})")
    config = config.with_(threshold=None, calibration=None)
    chip = config.chip
    train_set, val_pairs, val_set, split_info = load_training_data(Path(args.data), args.workers, args.seed, chip)
    wild_val = D.wild_validation(Path(args.wild), workers=args.workers, chip=chip) if args.wild else None
    extra = D.extra_faceset(Path(args.extra), workers=args.workers, chip=chip)[0] if args.extra else None
    log.info("train: %d people, %d images (+ %d unlabelled negatives); validation: %d LFW pairs%s",
             len(train_set.names), len(train_set.paths), 0 if extra is None else len(extra), len(val_pairs[0]),
             f" + {len(wild_val[2][0])} wild pairs" if wild_val else "")
    targets = original_descriptors(source, train_set.crops)
    extra_targets = original_descriptors(source, extra) if extra is not None else None

    keras.utils.set_random_seed(args.seed)
    encoder = build_encoder(config)
    encoder.load_weights(source / config.weights_file)
    trainable = freeze(encoder, args.freeze)
    batch = args.people * args.per_person + (args.extra_per_batch if extra is not None else 0)
    schedule = keras.optimizers.schedules.CosineDecay(args.lr, args.steps, alpha=0.1)
    trainer = TripletTrainer(encoder, mining="batch-hard", margin=args.margin, distill_weight=args.pull_weight)
    trainer.compile(optimizer=keras.optimizers.Adam(schedule), jit_compile=False)
    weights_path = out / config.weights_file
    groups = person_groups(train_set)
    batches = TripletBatches(lambda rng: make_batch(train_set, extra, targets, extra_targets, groups, args, rng),
                             args.seed, args.steps)
    checkpoint = ValidationCheckpoint(Encoder(config, encoder), encoder, weights_path, val_set, val_pairs, wild_val,
                                      every=args.eval_every, steps=args.steps, batch=batch)
    checkpoint.baseline()  # step 0: the starting weights, so that training must beat them to be kept
    log.info("fine-tuning %d steps of %d images, %d trainable parameters (stem + %d stages frozen)", args.steps,
             batch, trainable, args.freeze)
    trainer.fit(batches, epochs=1, verbose=0, callbacks=[checkpoint])
    history, best = checkpoint.history, checkpoint.best
    wall = time.time() - t_start
    log.info("best validation accuracy %.4f at step %d (step 0 = the port); %.1f min", best["val_accuracy"],
             best["step"], wall / 60)

    from .evaluate import calibrate_folder
    from .tflite import with_inference, write_inference_file

    encoder.load_weights(weights_path)
    config = with_inference(config, write_inference_file(out, config, encoder))
    final = Encoder.load_from(config, weights_path)
    info = {
        "source": config.info.get("source", str(source)),
        "training": {"command": "python -m training.finetune " + " ".join(shlex.quote(a) for a in argv),
                     "kind": "triplet fine-tuning of the ported dlib ResNet", "wall_minutes": round(wall / 60, 1),
                     "steps": args.steps, "best_step": best["step"], "seed": args.seed, "batch": batch,
                     "margin": args.margin, "lr": args.lr, "pull_weight": args.pull_weight,
                     "frozen_stages": args.freeze, "trainable_parameters": trainable,
                     "extra_negatives": Path(args.extra).name if extra is not None else None,
                     "real_augment": not args.no_real_augment, "host_cpus": os.cpu_count(),
                     "keras_backend": keras.backend.backend()},
        "data": split_info,
        "before": starting_point(source),
    }
    calibrate_folder(out, final, val_set, val_pairs, info=info)
    (out / "history.json").write_text(json.dumps(history, indent=1) + "\n")
    plot_history(history, out / "training_curves.png")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
