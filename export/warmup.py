"""TF Serving warmup records: real PredictionLog protos, one per batch size the target's batching allows,
so the first client request after a rollout does not pay for graph initialization."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from tools import paths

# TF Serving reads at most this many warmup records.
MAX_RECORDS = 1000


def sample_jpeg(height: int, width: int, seed: int = 0) -> bytes:
    """A smooth synthetic photo-like JPEG (gradients plus noise), deterministic for a seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / max(width, 1), y / max(height, 1), (x + y) / max(width + height, 1)], axis=-1) * 255
    pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    return tf.io.encode_jpeg(pixels, quality=90).numpy()


def sample_png(height: int, width: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    return tf.io.encode_png(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).numpy()


def predict_request(model_name: str, images: list[bytes], signature: str = paths.SERVING_SIGNATURE,
                    version: int | None = None) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature)
    )
    if version is not None:
        request.model_spec.version.value = version
    request.inputs[paths.INPUT_KEY].CopyFrom(tf.make_tensor_proto(images, dtype=tf.string, shape=[len(images)]))
    return request


def warmup_requests(model_name: str, batch_sizes: tuple[int, ...], input_size: tuple[int, int]) -> list:
    """One JPEG request per batch size (sizes around the input size, so the resize runs), then one PNG."""
    h, w = input_size
    requests = []
    for size in batch_sizes:
        images = [sample_jpeg(h + 16 * (i % 3), w + 24 * (i % 2), seed=i) for i in range(size)]
        requests.append(predict_request(model_name, images))
    requests.append(predict_request(model_name, [sample_png(h // 2 + 1, w // 2 + 1)]))
    if len(requests) > MAX_RECORDS:
        raise ValueError(f"{len(requests)} warmup records; TF Serving reads at most {MAX_RECORDS}")
    return requests


def write_warmup(path: Path, requests: list) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for request in requests:
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return len(requests)


def read_warmup(path: Path) -> list[prediction_log_pb2.PredictionLog]:
    logs = []
    for record in tf.data.TFRecordDataset(str(path)):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record.numpy())
        logs.append(log)
    return logs
