"""Batch normalization folded into the layer before it: the same function, no normalization ops left, and every
case that is not provably the same left alone."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from export.fold import fold_batch_norms
from export.layout import to_channels_first
from tests.conftest import TINY_SIZE, tiny_resnet

layers = keras.layers


def _trained_statistics(model, seed=0):
    """Give every BatchNormalization the statistics and affine terms training would (far from 0 and 1), so a
    wrong fold shows in the answers."""
    rng = np.random.default_rng(seed)
    for layer in _all_layers(model):
        if isinstance(layer, layers.BatchNormalization):
            values = []
            for w in layer.weights:
                kind = w.path.rsplit("/", 1)[-1]
                if kind == "moving_variance":
                    values.append(rng.uniform(0.2, 3.0, w.shape))
                elif kind == "gamma":
                    values.append(rng.uniform(0.3, 2.0, w.shape))
                else:  # beta, moving_mean
                    values.append(rng.normal(0, 0.5, w.shape))
            layer.set_weights(values)
    return model


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def _norms(model):
    return sum(isinstance(layer, layers.BatchNormalization) for layer in _all_layers(model))


def _same(a, b, x, atol=1e-5):
    """Equal up to float32 rounding, relative to the size of the outputs (pixels 0-255 give outputs in the
    hundreds: the two orders of the same arithmetic differ by a few ulps of those)."""
    want, got = a(x, training=False).numpy(), b(x, training=False).numpy()
    np.testing.assert_allclose(got, want, atol=atol * max(1.0, float(np.abs(want).max())), rtol=0)


def _image(shape=(3, *TINY_SIZE, 3), seed=1):
    return np.random.default_rng(seed).uniform(0, 255, shape).astype(np.float32)


def test_the_tiny_resnet_folds_both_norms_and_answers_the_same():
    model = _trained_statistics(tiny_resnet())
    folded, count = fold_batch_norms(model)
    assert (count, _norms(model), _norms(folded)) == (2, 2, 0)
    _same(model, folded, _image())
    # names kept: the normalization is an Identity under its own name
    assert [layer.name for layer in model.layers] == [layer.name for layer in folded.layers]
    # the original is untouched (validation compares every export with it)
    assert _norms(model) == 2 and len(model.get_layer("stem_conv").get_weights()) == 2


def test_the_folded_graph_has_no_normalization_arithmetic_left():
    model = _trained_statistics(tiny_resnet())
    folded, _ = fold_batch_norms(model)

    def ops(m):
        graph = tf.function(lambda x: m(x, training=False)).get_concrete_function(
            tf.TensorSpec([None, *TINY_SIZE, 3])).graph
        return [op.type for op in graph.get_operations()]

    assert ops(model).count("Rsqrt") == 2 and ops(folded).count("Rsqrt") == 0
    assert ops(folded).count("BiasAdd") == ops(model).count("BiasAdd")


def test_folding_then_channels_first_gives_the_same_answers():
    model = _trained_statistics(tiny_resnet())
    folded, _ = fold_batch_norms(model)
    x = _image()
    np.testing.assert_allclose(model(x, training=False).numpy(),
                               to_channels_first(folded)(np.transpose(x, (0, 3, 1, 2)), training=False).numpy(),
                               atol=1e-5)


def _residual_block():
    """conv -> norm -> Add(with the block's input) -> relu: the normalization feeds a residual Add."""
    keras.utils.set_random_seed(8)
    inputs = keras.Input((*TINY_SIZE, 3))
    x = layers.Conv2D(4, 1, name="widen")(inputs)
    y = layers.Conv2D(4, 3, padding="same", name="conv")(x)
    y = layers.BatchNormalization(name="norm")(y)
    x = layers.Activation("relu")(layers.Add()([x, y]))
    return _trained_statistics(keras.Model(inputs, layers.GlobalAveragePooling2D()(x)))


def test_a_norm_before_a_residual_add_keeps_its_shift_apart_in_both_layouts():
    # Folded completely, oneDNN would fuse the Add into the convolution, 10x slower at batch 1 on AVX2 (fold.py).
    model = _residual_block()
    folded, count = fold_batch_norms(model)
    assert count == 1 and type(folded.get_layer("norm")).__name__ == "Rescaling"
    np.testing.assert_allclose(folded.get_layer("norm").offset, model.get_layer("norm").beta.numpy(), rtol=1e-6)
    x = _image()
    _same(model, folded, x)
    nchw = to_channels_first(folded)
    want = model(x, training=False).numpy()
    np.testing.assert_allclose(nchw(np.transpose(x, (0, 3, 1, 2)), training=False).numpy(), want,
                               atol=1e-5 * np.abs(want).max())


def test_complete_folds_the_shift_before_a_residual_add_into_the_convolution_too():
    # model.yaml fold_batch_norms: complete, for targets on AVX-512 nodes (export/fold.py)
    model = _residual_block()
    folded, count = fold_batch_norms(model, complete=True)
    assert count == 1 and type(folded.get_layer("norm")).__name__ == "Identity"
    _same(model, folded, _image())
    apart, _ = fold_batch_norms(model)  # the bias differs by exactly the shift kept apart
    np.testing.assert_allclose(folded.get_layer("conv").bias.numpy() - apart.get_layer("conv").bias.numpy(),
                               model.get_layer("norm").beta.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("norm", [dict(), dict(center=False), dict(scale=False), dict(center=False, scale=False),
                                  dict(epsilon=0.1)])
def test_a_convolution_without_bias_gets_one_and_every_norm_variant_folds(norm):
    keras.utils.set_random_seed(3)
    inputs = keras.Input((16, 16, 3))
    x = layers.Conv2D(6, 3, use_bias=False, name="conv")(inputs)
    x = layers.BatchNormalization(**norm)(x)
    model = _trained_statistics(keras.Model(inputs, layers.Activation("relu")(x)))
    folded, count = fold_batch_norms(model)
    assert count == 1 and folded.get_layer("conv").use_bias
    _same(model, folded, _image((2, 16, 16, 3)))


def test_depthwise_grouped_and_dense_layers_fold():
    keras.utils.set_random_seed(4)
    inputs = keras.Input((16, 16, 4))
    x = layers.DepthwiseConv2D(3, depth_multiplier=3)(inputs)  # output channel c*3 + m
    x = layers.BatchNormalization()(x)
    x = layers.Conv2D(6, 1, groups=3)(x)
    x = layers.BatchNormalization(axis=3)(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(5)(x)
    x = layers.BatchNormalization()(x)
    model = _trained_statistics(keras.Model(inputs, x))
    folded, count = fold_batch_norms(model)
    assert (count, _norms(folded)) == (3, 0)
    _same(model, folded, _image((2, 16, 16, 4)))


def test_sequential_and_nested_models_fold_inside():
    keras.utils.set_random_seed(5)
    sequential = _trained_statistics(keras.Sequential([
        keras.Input((16, 16, 3)), layers.Conv2D(4, 3), layers.BatchNormalization(), layers.ReLU(),
        layers.Flatten(), layers.Dense(3), layers.BatchNormalization(), layers.Softmax()]))
    folded, count = fold_batch_norms(sequential)
    assert (count, _norms(folded)) == (2, 0) and isinstance(folded, keras.Sequential)
    _same(sequential, folded, _image((2, 16, 16, 3)))

    # The usual fine-tuned model: a pretrained base called as one layer, a new head on top.
    base = tiny_resnet()
    base = keras.Model(base.input, base.layers[-2].output, name="base")  # without its classifier
    inputs = keras.Input((*TINY_SIZE, 3))
    outputs = layers.Dense(2, activation="softmax")(layers.Dropout(0.2)(base(inputs)))
    model = _trained_statistics(keras.Model(inputs, outputs))
    folded, count = fold_batch_norms(model)
    assert (count, _norms(model), _norms(folded)) == (2, 2, 0)
    _same(model, folded, _image())


def _not_folded(model, x):
    _trained_statistics(model)
    folded, count = fold_batch_norms(model)
    assert count == 0 and folded is model
    return folded


def test_a_normalization_that_is_not_provably_the_same_function_is_left_alone():
    x = _image((2, 16, 16, 3))

    def functional(build):
        keras.utils.set_random_seed(6)
        inputs = keras.Input((16, 16, 3))
        return keras.Model(inputs, build(inputs))

    # an activation between the convolution and the normalization
    _not_folded(functional(lambda i: layers.BatchNormalization()(layers.Conv2D(4, 3, activation="relu")(i))), x)
    # the convolution's output is also used elsewhere: folding would change that other use
    def branch(i):
        c = layers.Conv2D(3, 3, padding="same")(i)
        return layers.Add()([layers.BatchNormalization()(c), c])
    _not_folded(functional(branch), x)
    # normalizing the rows, not the channels
    _not_folded(functional(lambda i: layers.BatchNormalization(axis=1)(layers.Conv2D(4, 3, padding="same")(i))), x)
    _not_folded(functional(lambda i: layers.BatchNormalization(axis=1)(layers.Dense(5)(i))), x)  # Dense on 4-D
    # forced into training mode: batch statistics, not the moving ones
    _not_folded(functional(lambda i: layers.BatchNormalization()(layers.Conv2D(4, 3)(i), training=True)), x)
    # one convolution layer shared by two paths
    def shared(i):
        conv = layers.Conv2D(3, 3, padding="same")
        return layers.Add()([layers.BatchNormalization()(conv(i)), conv(layers.Rescaling(0.5)(i))])
    _not_folded(functional(shared), x)
    # a normalization after a layer that has no kernel to fold into
    _not_folded(functional(lambda i: layers.BatchNormalization()(layers.MaxPooling2D()(i))), x)


def test_resnet50_folds_all_53_normalizations():
    keras.utils.set_random_seed(7)
    model = _trained_statistics(keras.applications.ResNet50(weights=None))
    folded, count = fold_batch_norms(model)
    assert (count, _norms(folded)) == (53, 0)
    x = np.random.default_rng(2).uniform(-120, 150, (1, 224, 224, 3)).astype(np.float32)
    a, b = model(x, training=False).numpy(), folded(x, training=False).numpy()
    assert np.abs(a - b).max() < 1e-5 and a.argmax() == b.argmax()


@pytest.mark.slow(seconds=20)
def test_fold_batch_norms_false_exports_the_model_as_trained_and_is_a_different_version(tiny_export, tmp_path):
    import json
    import shutil
    from dataclasses import replace

    from export.api import export_model
    from tests.export.graph_ops import saved_model_nodes
    from tools import paths
    from tools.errors import UserError

    config = tiny_export.config
    unfolded = replace(config, model=replace(config.model, fold_batch_norms=False))
    out = tmp_path / "models"
    shutil.copytree(tiny_export.root, out)
    with pytest.raises(UserError, match=r"differs \(batch_norms_folded, fold_batch_norms changed\)"):
        export_model(unfolded, version=1, output_dir=out, verbose=False)
    d = export_model(unfolded, version=2, output_dir=out, layouts=("channels_last",), verbose=False)["channels_last"]
    info = json.loads((d / paths.ASSETS_EXTRA_DIR / paths.EXPORT_INFO_FILE).read_text())
    assert (info["fold_batch_norms"], info["batch_norms_folded"]) == (False, 0)
    assert "Rsqrt" in [node.op for node in saved_model_nodes(d)]

    from tests.export import images
    samples = tf.constant([images.jpeg(60, 80, seed=1), images.png(33, 21, seed=2)])
    as_trained = tf.saved_model.load(str(d)).signatures["serving_default"](images=samples)
    folded = tf.saved_model.load(str(tiny_export.dirs["channels_last"])).signatures["serving_default"](images=samples)
    np.testing.assert_array_equal(as_trained["classes"].numpy(), folded["classes"].numpy())
    np.testing.assert_allclose(as_trained["probabilities"].numpy(), folded["probabilities"].numpy(), atol=1e-6)
