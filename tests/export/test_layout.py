"""channels_first conversion: same weights, same answers, and the convolutions really run in NCHW."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from export.layout import to_channels_first
from tests.conftest import tiny_resnet
from tests.export.graph_ops import conv_formats, nodes_of_graph_def
from tools.errors import UserError


def test_channels_first_model_gives_the_same_probabilities():
    model = tiny_resnet()
    nchw = to_channels_first(model)
    x = np.random.default_rng(0).uniform(0, 255, (3, 40, 48, 3)).astype(np.float32)
    np.testing.assert_allclose(model(x).numpy(), nchw(np.transpose(x, (0, 3, 1, 2))).numpy(), atol=1e-5)
    assert nchw.input_shape == (None, 3, 40, 48)


def test_channels_first_graph_runs_conv2d_in_nchw_and_channels_last_in_nhwc():
    model = tiny_resnet()
    nchw = to_channels_first(model)
    first = tf.function(nchw).get_concrete_function(tf.TensorSpec([None, 3, 40, 48]))
    last = tf.function(model).get_concrete_function(tf.TensorSpec([None, 40, 48, 3]))
    assert set(conv_formats(nodes_of_graph_def(first.graph.as_graph_def()))) == {"NCHW"}
    assert set(conv_formats(nodes_of_graph_def(last.graph.as_graph_def()))) == {"NHWC"}


def test_sequential_models_convert_too():
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input((16, 16, 3)),
        keras.layers.Conv2D(4, 3),
        keras.layers.BatchNormalization(),
        keras.layers.Flatten(),  # flattening order differs per layout: Flatten's data_format must follow
        keras.layers.Dense(3, activation="softmax"),
    ])
    x = np.random.default_rng(0).uniform(0, 1, (2, 16, 16, 3)).astype(np.float32)
    nchw = to_channels_first(model)
    np.testing.assert_allclose(model(x).numpy(), nchw(np.transpose(x, (0, 3, 1, 2))).numpy(), atol=1e-5)


def test_a_layer_that_cannot_move_is_an_error_naming_it():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(2, 3)(inputs)
    x = keras.layers.Reshape((-1,), name="my_reshape")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    with pytest.raises(UserError, match="'my_reshape' \\(Reshape\\)"):
        to_channels_first(model)


@pytest.mark.parametrize("as_array", [False, True])
def test_per_channel_rescaling_moves_its_values_to_the_channel_axis(as_array):
    # Keras reshapes a Rescaling's per-channel scale by the global image_data_format only, never its offset.
    per_channel = (lambda v: np.array(v, np.float32)) if as_array else list
    inputs = keras.Input((8, 6, 3))
    x = keras.layers.Rescaling(per_channel([1 / 58.4, 1 / 57.1, 1 / 57.4]), per_channel([-2.1, -2.0, -1.8]))(inputs)
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3)(x))
    x = np.random.default_rng(0).uniform(0, 255, (2, 8, 6, 3)).astype(np.float32)
    nchw = to_channels_first(model)
    np.testing.assert_allclose(np.transpose(nchw(np.transpose(x, (0, 3, 1, 2))).numpy(), (0, 2, 3, 1)),
                               model(x).numpy(), atol=1e-5)


def test_a_rescaling_of_another_shape_is_an_error_naming_it():
    inputs = keras.Input((8, 2, 2))
    x = keras.layers.Rescaling([[1.0, 2.0], [3.0, 4.0]], name="odd_scale")(inputs)  # per column and channel
    with pytest.raises(UserError, match="'odd_scale' \\(Rescaling\\).*one value per channel"):
        to_channels_first(keras.Model(inputs, x))
