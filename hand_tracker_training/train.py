r"""
Train the SSD MobileNet v2 hand detector and export it (``hand-tracker-train``).

Training runs on any Keras 3 backend (the input pipeline is numpy + OpenCV); exporting needs
TensorFlow. A run directory (``--out``) gets::

    config.json            network + anchors (SSDConfig), enough to rebuild the model
    args.json              the command line
    last.keras             checkpoint of every epoch (with optimizer state: --resume)
    best.weights.h5        the weights of the best validation COCO AP@0.5 so far
    history.csv            losses, learning rate and validation metrics per epoch
    tensorboard/           TensorBoard logs (TensorFlow backend)
    training_curves.png    losses + validation AP per epoch
    train.log              (when started with nohup ... > train.log)
    export/                frozen_inference_graph.pb, model.tflite, model_int8.tflite,
                           label_map.pbtxt, metrics.json (each export evaluated via
                           hand_tracker_ros.backends.load_detector)

Examples::

    hand-tracker-train --egohands ../shared/data/egohands \
        --train-videos CARDS_LIVINGROOM_B_T,PUZZLE_LIVINGROOM_T_B --val-videos CARDS_OFFICE_S_B \
        --yolo ../shared/data/hand_gestures_roboflow \
        --init ../shared/weights/mobilenet_v2_1.0_224_imagenet_int8.tflite --out runs/hands
    hand-tracker-train --smoke --egohands ../shared/data/egohands --out /tmp/smoke
    hand-tracker-export --run runs/hands --out models/
"""
from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
import csv
import importlib.util
import json
import os
from pathlib import Path
import sys
import time

from hand_tracker_training.datasets.sources import add_source_options, training_samples
from hand_tracker_training.input_pipeline import cache_images, SSDDataset, to_network_input
from hand_tracker_training.losses import BoxLoss, FocalLoss
from hand_tracker_training.model import build_ssd, exported_config, predict_detections, SSDConfig
from hand_tracker_training.pretrained import freeze_before, initialise, PretrainedUnavailable
import keras
import numpy as np


#: The ImageNet MobileNetV2 TFLite of the shared weights folder (``--init auto`` falls back to it).
SHARED_TFLITE = (Path(__file__).resolve().parents[2] / 'shared' / 'weights'
                 / 'mobilenet_v2_1.0_224_imagenet_int8.tflite')


# ----------------------------------------------------------------------------- data
def load_recipe_samples(args: argparse.Namespace) -> tuple[list, list]:
    """Return (training, validation) samples of the recipe's weighted sources (sources.py)."""
    from hand_tracker_training.sources import recipe_samples

    return recipe_samples(args.recipe_settings.weights, args.data_root,
                          args.smoke_images if args.smoke else 0, args.fold,
                          args.recipe_settings.val_far_hands)


def load_samples(args: argparse.Namespace) -> tuple[list, list]:
    """Return (training, validation) samples of --recipe or the source options (--smoke: a few)."""
    if getattr(args, 'recipe_settings', None) is not None:
        return load_recipe_samples(args)
    train, val = training_samples(args)
    if args.smoke:
        train, val = train[:args.smoke_images], val[:max(2, args.smoke_images // 2)]
    if not train:
        raise SystemExit('no training images: give --sources, --egohands and/or --yolo')
    return train, val


# ----------------------------------------------------------------------------- callbacks
class ValidationAP(keras.callbacks.Callback):
    """
    COCO metrics of the model on the validation images every `every` epochs.

    Adds ``val_AP``, ``val_AP50``, ``val_AP75`` to the epoch logs (later callbacks such as
    TensorBoard see them), appends them to ``validation.csv`` (CSVLogger fixes its columns at
    the first epoch, which may have no validation) and saves ``best.weights.h5`` when AP@0.5
    improves.
    """

    def __init__(self, config: SSDConfig, samples: Sequence, images: list[np.ndarray],
                 out: Path, every: int, epochs: int, best: float = -1.0) -> None:
        super().__init__()
        self.config, self.samples, self.images = config, list(samples), images
        self.sizes = [(int(s.width), int(s.height)) for s in self.samples]
        self.out, self.every, self.epochs, self.best = out, every, epochs, best
        self.sources = sorted({s.source for s in self.samples})
        #: select on the mean over sources of AP@0.5 when the samples come from several
        self.key = 'AP50_source_mean' if len(self.sources) > 1 else 'AP50'

    def metrics(self, preds: list) -> dict:
        """Pooled COCO metrics, plus AP@0.5 per source and its mean with several sources."""
        from hand_tracker_training.evaluate import coco_metrics

        m = coco_metrics(self.samples, preds)
        if self.key == 'AP50_source_mean':
            for src in self.sources:
                idx = [i for i, s in enumerate(self.samples) if s.source == src]
                m[f'AP50_{src}'] = coco_metrics([self.samples[i] for i in idx],
                                                [preds[i] for i in idx])['AP50']
            m['AP50_source_mean'] = float(np.mean([m[f'AP50_{s}'] for s in self.sources]))
        return m

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None or ((epoch + 1) % self.every and epoch + 1 != self.epochs):
            return
        t0 = time.time()
        m = self.metrics(predict_detections(self.model, self.config, self.images, self.sizes))
        logs.update(val_AP=m['AP'], val_AP50=m['AP50'], val_AP75=m['AP75'])
        keys = ['AP', 'AP50', 'AP75'] + [k for k in m if k.startswith('AP50_')]
        csv_path = self.out / 'validation.csv'
        new = not csv_path.exists()
        with open(csv_path, 'a', newline='') as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(['epoch'] + keys)
            writer.writerow([epoch + 1] + [m[k] for k in keys])
        better = m[self.key] > self.best
        if better:
            self.best = m[self.key]
            self.model.save_weights(self.out / 'best.weights.h5')
            (self.out / 'best.json').write_text(json.dumps(
                {'epoch': epoch + 1, 'selected_on': self.key, **{k: m[k] for k in keys}},
                indent=1))
        per_source = '  '.join(f'{k[5:]} {m[k]:.3f}' for k in keys if k.startswith('AP50_'))
        print(f'epoch {epoch + 1}: val AP@0.5 {m["AP50"]:.4f}  AP {m["AP"]:.4f}  '
              f'AP@0.75 {m["AP75"]:.4f}  {per_source}{"  (best, saved)" if better else ""}  '
              f'[{time.time() - t0:.0f} s]', flush=True)


class StepProgress(keras.callbacks.Callback):
    """
    Log a line every `every` training steps (step, loss, seconds per step).

    So a slow run's log shows how far an epoch has got.
    """

    def __init__(self, every: int = 25) -> None:
        super().__init__()
        self.every, self.t0 = every, time.time()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.t0, self.epoch = time.time(), epoch + 1

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if (batch + 1) % self.every == 0:
            print(f'  epoch {self.epoch} step {batch + 1}: loss {(logs or {}).get("loss", 0):.4f}'
                  f'  {(time.time() - self.t0) / (batch + 1):.2f} s/step', flush=True)


class EpochState(keras.callbacks.Callback):
    """Writes ``state.json`` (last finished epoch, best AP@0.5) after the epoch's checkpoint."""

    def __init__(self, out: Path, validation: ValidationAP | None) -> None:
        super().__init__()
        self.out, self.validation = out, validation

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        best = self.validation.best if self.validation else None
        (self.out / 'state.json').write_text(json.dumps({'epoch': epoch + 1, 'best_AP50': best}))


# ----------------------------------------------------------------------------- plots
def plot_history(out: Path, png: Path) -> Path:
    """
    Plot the training curves of run directory `out` as a small PNG.

    ``history.csv`` gives the losses, ``validation.csv`` the AP per evaluated epoch.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    with open(out / 'history.csv') as f:
        rows = list(csv.DictReader(f))
    val = []
    if (out / 'validation.csv').exists():
        with open(out / 'validation.csv') as f:
            val = list(csv.DictReader(f))
    ep = [int(r['epoch']) + 1 for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2), dpi=80)
    for key, label in (('loss', 'total'), ('classes_loss', 'focal (class)'),
                       ('boxes_loss', 'smooth L1 (box)')):
        if rows and key in rows[0]:
            a.plot(ep, [float(r[key]) for r in rows], label=label)
    a.set_xlabel('epoch'), a.set_ylabel('training loss'), a.legend(), a.grid(alpha=.3)
    for key in ('AP50', 'AP', 'AP75'):
        b.plot([int(r['epoch']) for r in val], [float(r[key]) for r in val], 'o-', ms=3,
               label={'AP50': 'AP@0.5', 'AP': 'AP@[.5:.95]', 'AP75': 'AP@0.75'}[key])
    b.set_xlabel('epoch'), b.set_ylabel('validation'), b.set_ylim(0, 1), b.grid(alpha=.3)
    if val:
        b.legend()
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
    return png


# ----------------------------------------------------------------------------- command
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='hand-tracker-train', description=__doc__.split('\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_source_options(p)
    p.add_argument('--egohands-repeat', type=int, default=1,
                   help='show each EgoHands training frame N times per epoch (oversampling)')
    m = p.add_argument_group('model')
    m.add_argument('--input-size', type=int, help='network input side (default 300; smoke 128)')
    m.add_argument('--alpha', type=float, default=1.0, help='MobileNetV2 width multiplier')
    m.add_argument('--init', default='auto',
                   help="'imagenet' (Keras download), a MobileNetV2 .tflite, a .keras / "
                        "run's .weights.h5 (fine-tuning), 'scratch', or 'auto' (imagenet, "
                        f'else {SHARED_TFLITE})')
    m.add_argument('--trainable-from', default='block_7_expand',
                   help='with a pretrained --init, freeze the backbone layers before this one '
                        "(block_7 starts the stride-16 part); '' trains everything")
    t = p.add_argument_group('training')
    t.add_argument('--epochs', type=int, help='default 60; smoke 2')
    t.add_argument('--batch-size', type=int, help='default 16; smoke 4')
    t.add_argument('--optimizer', choices=('adamw', 'sgd'), default='adamw',
                   help='AdamW, or SGD with Nesterov momentum 0.9')
    t.add_argument('--lr', type=float, default=1e-3,
                   help='peak learning rate (linear warm-up, cosine decay)')
    t.add_argument('--warmup-epochs', type=float, default=1.0)
    t.add_argument('--weight-decay', type=float, default=1e-4, help='decoupled weight decay')
    t.add_argument('--seed', type=int, default=0)
    t.add_argument('--eval-every', type=int, default=2, help='validation AP every N epochs')
    t.add_argument('--cache-side', type=int, default=640,
                   help='images kept in memory downscaled to this longer side')
    t.add_argument('--workers', type=int, default=1, help='PyDataset worker threads')
    t.add_argument('--out', required=True, help='run directory')
    t.add_argument('--resume', action='store_true', help='continue from OUT/last.keras')
    t.add_argument('--no-export', action='store_true', help='skip the export at the end')
    t.add_argument('--calibration-images', type=int, default=100)
    t.add_argument('--smoke', action='store_true',
                   help='CI smoke run: a few images, 2 epochs, 128 px input, full export')
    t.add_argument('--smoke-images', type=int, default=8)
    r = p.add_argument_group('many-domain recipe (config/train_recipe.yaml)')
    r.add_argument('--recipe', help="recipe YAML: 'args' (defaults of these options), "
                   "'anchors' (AnchorConfig), 'recipe' (sampling and composition, "
                   'hand_tracker_training.recipe.Recipe); data from the sources split')
    r.add_argument('--stage', default='',
                   help="a stage of the recipe file's 'stages' (its options on top of 'args'; "
                        'the command line still wins)')
    r.add_argument('--mine-model', default='',
                   help='a detector (.tflite) whose false positives on the training images '
                        'become hard-negative crops')
    r.add_argument('--recall-floor', type=float, default=0.85,
                   help="operating point: every validation source's recall >= this")
    return p


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """
    Parse the command line.

    A --recipe file's ``args`` become the defaults, with those of its ``stages`` entry named by
    --stage on top (the command line still wins); its ``anchors`` / ``recipe`` sections are kept
    on the namespace.
    """
    import yaml

    from hand_tracker_training.recipe import Recipe

    p = _parser()
    args = p.parse_args(argv)
    args.recipe_settings, args.anchor_settings = None, None
    if args.stage and not args.recipe:
        raise SystemExit('--stage needs --recipe')
    if args.recipe:
        doc = yaml.safe_load(Path(args.recipe).read_text()) or {}
        stages = doc.get('stages') or {}
        if args.stage and args.stage not in stages:
            raise SystemExit(f'{args.recipe}: no stage {args.stage!r} (stages: {sorted(stages)})')
        defaults = {**doc.get('args', {}), **(stages.get(args.stage) or {})}
        unknown = set(defaults) - set(vars(args))
        if unknown:
            raise SystemExit(f'{args.recipe}: unknown args {sorted(unknown)}')
        p.set_defaults(**defaults)
        args = p.parse_args(argv)
        args.recipe_settings = Recipe.from_dict(doc.get('recipe', {}))
        args.anchor_settings = doc.get('anchors')
    return args


def _resolve_init(init: str, alpha: float) -> str:
    """'auto' -> 'imagenet' when downloadable, else the shared TFLite (else an error)."""
    if init != 'auto':
        return init
    return 'imagenet' if _imagenet_available(alpha) else str(SHARED_TFLITE)


def _imagenet_available(alpha: float) -> bool:
    try:
        keras.applications.MobileNetV2(weights='imagenet', include_top=False, alpha=alpha,
                                       input_shape=(224, 224, 3))
        return True
    except Exception as e:  # any download failure
        print(f'Keras ImageNet weights not available ({type(e).__name__}); '
              f'using {SHARED_TFLITE}', flush=True)
        return False


def _callbacks(args, out: Path, validation: ValidationAP | None) -> list:
    cbs: list = []
    if validation is not None:
        cbs.append(validation)
    cbs += [StepProgress(), keras.callbacks.ModelCheckpoint(out / 'last.keras'),
            keras.callbacks.CSVLogger(out / 'history.csv', append=args.resume),
            EpochState(out, validation)]
    if keras.backend.backend() == 'tensorflow' and importlib.util.find_spec('tensorboard'):
        cbs.append(keras.callbacks.TensorBoard(out / 'tensorboard', write_graph=False,
                                               update_freq='epoch'))
    else:
        print(f'no TensorBoard logs (they need the tensorboard package and the TensorFlow '
              f'backend; this is {keras.backend.backend()}): history.csv only', flush=True)
    return cbs


def _jsonable(value):
    """JSON form of the recipe objects kept on the arguments."""
    return value.to_dict() if hasattr(value, 'to_dict') else str(value)


def new_config(args: argparse.Namespace) -> SSDConfig:
    """
    Return the network of a new run: input size, width and the recipe's anchors.

    Without a recipe's anchors, fine-tuning an exported hand model (``--init model.tflite``
    with its ``metrics.json``) keeps that model's network and anchors, so its heads mean what
    they meant; a different --input-size still applies.
    """
    from hand_tracker_training.anchors import AnchorConfig

    exported = exported_config(args.init) if args.anchor_settings is None else None
    if exported is not None:
        exported.input_size = args.input_size or exported.input_size
        print(f'network of {args.init}: input {exported.input_size}, '
              f'{exported.anchors.num_levels} levels, anchors {exported.anchors.to_dict()}',
              flush=True)
        return exported
    anchors = AnchorConfig(**{k: tuple(v) if isinstance(v, list) else v
                              for k, v in (args.anchor_settings or {}).items()})
    return SSDConfig(input_size=args.input_size, alpha=args.alpha, anchors=anchors)


def training_dataset(args: argparse.Namespace, samples: list, config: SSDConfig,
                     out: Path) -> SSDDataset:
    """
    Return the plain SSD dataset, or with --recipe the balanced, composed one.

    With --recipe its mix is printed and written to ``mix.json``.
    """
    from hand_tracker_training.recipe import RecipeAugmenter, RecipeDataset, hand_bank

    images = cache_images(samples, args.cache_side)
    kw = {'batch_size': args.batch_size, 'seed': args.seed, 'workers': args.workers,
          'use_multiprocessing': False}
    if args.recipe_settings is None:
        return SSDDataset(images, config.anchor_boxes(), config.input_size, augment=True, **kw)
    recipe = args.recipe_settings
    masks, box_cuts = hand_bank(samples, images, recipe, np.random.default_rng(args.seed))
    negatives = mined_negatives(args, samples, images, out)
    composer = RecipeAugmenter(images, recipe, masks, box_cuts, negatives)
    ds = RecipeDataset(images, config.anchor_boxes(), config.input_size, recipe, composer, **kw)
    mix = {'weights': recipe.weights, 'drawn_per_epoch': ds.mix(),
           'training_images': dict(Counter(c.source for c in images)),
           'polygon_cutouts': len(masks), 'box_cutouts': len(box_cuts),
           'images_with_mined_negatives': len(negatives), 'recipe': recipe.to_dict()}
    (out / 'mix.json').write_text(json.dumps(mix, indent=1))
    print(f'mix per epoch: {mix["drawn_per_epoch"]} (training images '
          f'{mix["training_images"]}); {len(masks)} polygon + {len(box_cuts)} box hand '
          f'cutouts; mined negatives on {len(negatives)} images', flush=True)
    return ds


def mined_negatives(args: argparse.Namespace, samples: list, images: list,
                    out: Path) -> dict[int, np.ndarray]:
    """
    Return ``{image index: false-positive boxes at cache scale}`` of --mine-model.

    The boxes are on the training images (cached in ``hard_negatives.json``); empty without
    --mine-model.
    """
    if not args.mine_model:
        return {}
    from hand_tracker_training.recipe import mine_false_positives

    cache = out / 'hard_negatives.json'
    found = json.loads(cache.read_text()) if cache.exists() else {}
    keys = [os.path.realpath(s.image_path) for s in samples]
    if found and not any(found.get(k) for k in keys):
        # a cache from another checkout or data root: its keys name none of these images
        print(f'{cache} names none of the training images; mining again', flush=True)
        found = {}
    if not found:
        found = mine_false_positives(args.mine_model, samples)
        cache.write_text(json.dumps(found))
    return {i: np.asarray(found[k], np.float32) * images[i].scale
            for i, k in enumerate(keys) if found.get(k)}


def _resume(args: argparse.Namespace, out: Path) -> tuple[keras.Model, SSDConfig, int, float]:
    """Return (model, config, epochs done, best AP@0.5) of the run in `out` (``--resume``)."""
    config = SSDConfig.from_json((out / 'config.json').read_text())
    state = json.loads((out / 'state.json').read_text())
    model = keras.saving.load_model(out / 'last.keras')
    initial_epoch, best = state['epoch'], state.get('best_AP50') or -1.0
    print(f'resuming {out} after epoch {initial_epoch} (best AP@0.5 {best:.4f})')
    return model, config, initial_epoch, best


def _new_model(args: argparse.Namespace,
               out: Path) -> tuple[keras.Model, SSDConfig, int, float]:
    """Return a new initialised model, its config (written to `out`), 0 epochs done, no best."""
    config = new_config(args)
    (out / 'config.json').write_text(config.to_json())
    (out / 'args.json').write_text(json.dumps(vars(args), indent=1, default=_jsonable))
    model = build_ssd(config)
    init = _resolve_init(args.init, args.alpha)
    try:
        print('initialisation:', initialise(model, init, args.alpha), flush=True)
    except PretrainedUnavailable as e:
        raise SystemExit(str(e)) from e
    if init != 'scratch' and args.trainable_from:
        print(f'frozen: {freeze_before(model, args.trainable_from)} layers before '
              f'{args.trainable_from}', flush=True)
    return model, config, 0, -1.0


def _compile(model: keras.Model, args: argparse.Namespace, steps: int) -> None:
    """Compile `model` with the losses and the optimizer (warm-up + cosine decay) of `args`."""
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(1, args.epochs * steps - int(args.warmup_epochs * steps)),
        warmup_target=args.lr, warmup_steps=int(args.warmup_epochs * steps), alpha=0.01)
    if args.optimizer == 'sgd':
        optimizer = keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True,
                                         weight_decay=args.weight_decay, clipnorm=10.0)
    else:
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=args.weight_decay,
                                           clipnorm=10.0)
    model.compile(optimizer=optimizer, loss={'boxes': BoxLoss(), 'classes': FocalLoss()})


def train(args: argparse.Namespace) -> tuple[keras.Model, SSDConfig, list, list]:
    """
    Run the training part of ``hand-tracker-train``.

    Returns (model with best weights, config, training samples, validation samples).
    """
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(args.seed)
    train_samples, val_samples = load_samples(args)
    print(f'{len(train_samples)} training images ({sum(len(s.boxes) for s in train_samples)} '
          f'hands), {len(val_samples)} validation images', flush=True)

    model, config, initial_epoch, best = _resume(args, out) if args.resume \
        else _new_model(args, out)

    train_ds = training_dataset(args, train_samples, config, out)
    train_ds.epoch = initial_epoch
    train_ds._order = train_ds._permutation()  # the resumed epoch's order, not epoch 0's
    steps = len(train_ds)
    if not args.resume:
        _compile(model, args, steps)
    validation = None
    if val_samples:
        val_images = [to_network_input(c.rgb, config.input_size)
                      for c in cache_images(val_samples, args.cache_side)]
        validation = ValidationAP(config, val_samples, val_images, out, args.eval_every,
                                  args.epochs, best)
    print(f'{steps} steps/epoch, epochs {initial_epoch + 1}..{args.epochs}, input '
          f'{config.input_size}, alpha {config.alpha}, {model.count_params():,} parameters',
          flush=True)
    t0 = time.time()
    model.fit(train_ds, epochs=args.epochs, initial_epoch=initial_epoch,
              callbacks=_callbacks(args, out, validation),
              verbose=1 if sys.stdout.isatty() else 2)
    print(f'training took {(time.time() - t0) / 60:.1f} min', flush=True)
    plot_history(out, out / 'training_curves.png')
    if (out / 'best.weights.h5').exists():
        model.load_weights(out / 'best.weights.h5')
        print('best epoch:', (out / 'best.json').read_text(), flush=True)
    return model, config, train_samples, val_samples


def main(argv: Sequence[str] | None = None) -> int:
    """``hand-tracker-train``: train, keep the best validation AP@0.5, export."""
    args = parse_args(argv)
    defaults = {'input_size': 300, 'epochs': 60, 'batch_size': 16}
    if args.smoke:
        defaults = {'input_size': 128, 'epochs': 2, 'batch_size': 4}
        args.eval_every, args.calibration_images, args.warmup_epochs = 1, 4, 0.0
        if args.recipe_settings is not None:
            args.recipe_settings.epoch_size = 16
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    model, config, train_samples, val_samples = train(args)
    if not args.no_export:
        from hand_tracker_training.export import export_run

        export_run(model, config, Path(args.out), Path(args.out) / 'export', train_samples,
                   val_samples, args.calibration_images, args.seed,
                   args.recall_floor if args.recipe_settings is not None else None)
    return 0


if __name__ == '__main__':
    sys.exit(main())
