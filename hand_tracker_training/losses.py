"""
SSD losses in ``keras.ops`` (backend-neutral): sigmoid focal loss and smooth-L1 box loss.

Both are normalised by the number of positive anchors of the batch, as in the TF OD API, and
read the targets of :func:`hand_tracker_training.box_coding.encode_targets`:

* ``'classes'`` target ``(B, A, 1)``: 1 hand, 0 background, -1 ignored;
* ``'boxes'`` target ``(B, A, 5)``: box codes and, last, 1 for positive anchors.
"""
from __future__ import annotations

import keras
from keras import ops


def _num_positives(cls_target):
    return ops.maximum(ops.sum(ops.cast(cls_target > 0.5, 'float32')), 1.0)


@keras.saving.register_keras_serializable(package='hand_tracker')
class FocalLoss(keras.losses.Loss):
    """
    Sigmoid focal loss (Lin et al. 2017) over all non-ignored anchors / number of positives.

    Returns one value per image whose batch mean is the batch's total loss divided by its
    number of positives.
    """

    def __init__(self, alpha: float = 0.25, gamma: float = 2.0, name: str = 'focal_loss',
                 **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.alpha = alpha
        self.gamma = gamma

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, 'float32')
        logits = ops.cast(y_pred, 'float32')
        valid = ops.cast(y_true >= 0, 'float32')
        target = ops.clip(y_true, 0.0, 1.0)
        ce = ops.maximum(logits, 0) - logits * target + ops.log1p(ops.exp(-ops.abs(logits)))
        p = ops.sigmoid(logits)
        p_t = target * p + (1 - target) * (1 - p)
        alpha_t = target * self.alpha + (1 - target) * (1 - self.alpha)
        loss = alpha_t * ops.power(1 - p_t, self.gamma) * ce * valid
        batch = ops.cast(ops.shape(y_true)[0], 'float32')
        return ops.sum(loss, axis=(1, 2)) * batch / _num_positives(y_true)

    def get_config(self) -> dict:
        return {**super().get_config(), 'alpha': self.alpha, 'gamma': self.gamma}


@keras.saving.register_keras_serializable(package='hand_tracker')
class BoxLoss(keras.losses.Loss):
    """Smooth-L1 (Huber, delta 1) of the box codes of positive anchors / number of positives."""

    def __init__(self, delta: float = 1.0, name: str = 'box_loss', **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.delta = delta

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, 'float32')
        pos = y_true[..., 4]
        diff = ops.abs(y_true[..., :4] - ops.cast(y_pred, 'float32'))
        huber = ops.where(diff < self.delta, 0.5 * diff * diff / self.delta,
                          diff - 0.5 * self.delta)
        loss = ops.sum(huber, axis=-1) * pos
        batch = ops.cast(ops.shape(y_true)[0], 'float32')
        return ops.sum(loss, axis=1) * batch / ops.maximum(ops.sum(pos), 1.0)

    def get_config(self) -> dict:
        return {**super().get_config(), 'delta': self.delta}
