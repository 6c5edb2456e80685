"""Training under tf.distribute strategies (several GPUs, or several workers)."""

from __future__ import annotations

import numpy as np

from ..errors import MusgenError

__all__ = ["make_strategy", "DistributedLoop"]


def make_strategy(strategy):
    import tensorflow as tf

    if strategy is None or strategy == "default":
        return tf.distribute.get_strategy(), True
    if isinstance(strategy, tf.distribute.Strategy):
        s = strategy
    elif strategy == "mirrored":
        s = tf.distribute.MirroredStrategy()
    elif strategy == "multiworker":
        s = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        raise ValueError(f"strategy={strategy!r}: expected 'default', 'mirrored' or "
                         "'multiworker'")
    resolver = getattr(s, "cluster_resolver", None)
    chief = True
    if resolver is not None and getattr(resolver, "task_type", None) is not None:
        chief = resolver.task_type == "chief" or (
            resolver.task_type == "worker" and resolver.task_id == 0
            and "chief" not in resolver.cluster_spec().as_dict())
    return s, chief


class DistributedLoop:
    """Train/validation steps under a tf.distribute strategy (MirroredStrategy on several
    GPUs, MultiWorkerMirroredStrategy across processes or machines).

    Keras 3's ``fit`` cannot run under MultiWorkerMirroredStrategy on this stack (it all-reduces
    the input tuple and the scalar logs along a missing axis), so the steps are written out:
    each replica computes the masked loss sum of its share of the global batch, the loss that is
    differentiated is that sum divided by the global number of real targets, and the optimizer
    all-reduces (sums) the gradients across replicas. Every global batch is split across the
    workers by DATA sharding, so the data order is still fixed by (seed, epoch). The last
    partial batch is dropped so that every replica runs the same number of steps.
    """

    def __init__(self, model, optimizer, strategy, *, paper: bool, pad_id, batch_size: int):
        import tensorflow as tf

        self.tf = tf
        self.model, self.optimizer, self.strategy = model, optimizer, strategy
        self.batch_size = int(batch_size)

        def per_example(x, y, w, training):
            pred = model(x, training=training)
            if paper:
                err = tf.reduce_mean(tf.square(tf.cast(y, pred.dtype) - pred), axis=-1)
                mask = tf.cast(w, err.dtype)
            else:
                err = tf.nn.sparse_softmax_cross_entropy_with_logits(
                    labels=tf.cast(y, tf.int32), logits=pred)
                mask = tf.cast(tf.not_equal(y, pad_id), err.dtype)
            return tf.reduce_sum(err * mask), tf.reduce_sum(mask)

        def train_step(x, y, w, total):
            with tf.GradientTape() as tape:
                s, c = per_example(x, y, w, True)
                loss = s / total
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return s, c

        def test_step(x, y, w, total):
            return per_example(x, y, w, False)

        def wrap(step):
            @tf.function
            def run(x, y, w, total):
                s, c = strategy.run(step, args=(x, y, w, total))
                sum_ = tf.distribute.ReduceOp.SUM
                return strategy.reduce(sum_, s, axis=None), strategy.reduce(sum_, c, axis=None)
            return run

        self._train, self._test = wrap(train_step), wrap(test_step)
        self.paper, self.pad_id = paper, pad_id

    def run_epoch(self, x, y, w, *, train: bool) -> float:
        """One pass over ``(x, y[, w])`` in order -> mean loss per real target."""
        tf = self.tf
        if w is None:
            w = np.ones(y.shape[:2], np.float32)
        n = (len(x) // self.batch_size) * self.batch_size
        if n == 0:
            raise MusgenError(f"distributed training: fewer windows ({len(x)}) than one "
                              f"global batch ({self.batch_size})")
        # Real targets per global batch: each replica divides its loss sum by this.
        real = w[:n] if self.paper else (y[:n] != self.pad_id)
        totals = real.reshape(n // self.batch_size, -1).sum(axis=1).astype(np.float32)
        d = tf.data.Dataset.from_tensor_slices((x[:n], y[:n], w[:n])).batch(self.batch_size)
        opts = tf.data.Options()
        opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        dist = self.strategy.experimental_distribute_dataset(d.with_options(opts))
        step = self._train if train else self._test
        s_all = c_all = 0.0
        for b, (xb, yb, wb) in enumerate(dist):
            s, c = step(xb, yb, wb, tf.constant(max(float(totals[b]), 1.0)))
            s_all += float(s)
            c_all += float(c)
        return s_all / max(c_all, 1.0)
