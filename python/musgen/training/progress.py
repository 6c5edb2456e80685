"""Training progress: one tqdm bar per epoch on standard error, titled ``Epoch k/N`` with the
run's real N (Keras's own bar would go to standard output and, with one ``fit`` call per epoch,
would always say ``Epoch 1/1``). In a log it is one line per epoch (see ``musgen._progress``)."""

from __future__ import annotations

from .._progress import progress_bar

__all__ = ["epoch_bar_callback", "losses_text"]


def losses_text(loss: float, val_loss: float) -> str:
    """How an epoch's losses are shown (bar, log line and distributed runs alike)."""
    return f"loss {loss:.4f} val_loss {val_loss:.4f}"


def epoch_bar_callback(epoch: int, epochs: int, steps: int, *, quiet: bool):
    """A Keras callback drawing epoch ``epoch`` (0-based) of ``epochs`` as a bar of ``steps``
    batches, with the running training loss and, at the end, the validation loss."""
    import keras

    class EpochBar(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch_index, logs=None):
            self.bar = progress_bar(steps, f"Epoch {epoch + 1}/{epochs}", unit="batch",
                                    quiet=quiet)

        def on_train_batch_end(self, batch, logs=None):
            self.bar.update(1)
            if logs and "loss" in logs:
                self.bar.set_postfix_str(f"loss {float(logs['loss']):.4f}", refresh=False)

        def on_epoch_end(self, epoch_index, logs=None):
            logs = logs or {}
            if "val_loss" in logs:
                self.bar.set_postfix_str(losses_text(float(logs["loss"]),
                                                     float(logs["val_loss"])))
            self.bar.close()

    return EpochBar()
