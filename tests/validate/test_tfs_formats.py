"""TF Serving's REST and gRPC formats as tools.validate.tfs_formats reproduces them (json_tensor.cc,
predict_util.cc, saved_model/util.cc). No model needed: signatures are built by hand."""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from tools.validate import tfs_formats as tfs

IMAGES = [b"\xff\xd8\xff first image", b"\x89PNG\r\n\x1a\n second\x00\x00"]  # trailing NULs must survive


def info(name, dtype, shape):
    return tfs.TensorInfo(name=name, dtype=dtype, shape=shape)


def signatures():
    outputs = {"classes": info("c:0", tf.int64, (None, 2)), "probabilities": info("p:0", tf.float32, (None, 2)),
               "labels": info("l:0", tf.string, (None, 2))}
    images = {"images": info("serving_default_images:0", tf.string, (None,))}
    return {
        "serving_default": tfs.SignatureInfo("serving_default", tfs.PREDICT_METHOD, images, outputs),
        "predict": tfs.SignatureInfo("predict", tfs.PREDICT_METHOD,
                                     {"images": info("predict_images:0", tf.string, (None,))}, outputs),
        "two_inputs": tfs.SignatureInfo("two_inputs", tfs.PREDICT_METHOD,
                                        {"a": info("a:0", tf.float32, (None, 2)), "b": info("b:0", tf.int64, (None,))},
                                        outputs),
        "__saved_model_init_op": tfs.SignatureInfo("__saved_model_init_op", "", {}, {}),
    }


def b64(data: bytes) -> dict:
    return {"b64": base64.b64encode(data).decode()}


def error_of(body, sigs=None) -> tfs.ServingError:
    with pytest.raises(tfs.ServingError) as exc:
        tfs.parse_rest_request(body if isinstance(body, (str, bytes)) else json.dumps(body), sigs or signatures())
    return exc.value


# ------------------------------------------------------------------------------------------ REST requests

def test_row_format_with_b64_objects_decodes_to_a_string_batch():
    req = tfs.parse_rest_request(json.dumps({"instances": [b64(i) for i in IMAGES]}), signatures())
    assert req.signature_name == "serving_default" and req.row_format
    assert req.inputs["images"].dtype == object and req.inputs["images"].tolist() == IMAGES


def test_row_format_named_inputs_and_signature_name():
    body = {"signature_name": "predict", "instances": [{"images": b64(i)} for i in IMAGES]}
    req = tfs.parse_rest_request(json.dumps(body), signatures())
    assert req.signature_name == "predict" and req.inputs["images"].tolist() == IMAGES


def test_columnar_format_single_and_named():
    single = tfs.parse_rest_request(json.dumps({"inputs": [b64(i) for i in IMAGES]}), signatures())
    named = tfs.parse_rest_request(json.dumps({"inputs": {"images": [b64(i) for i in IMAGES], "ignored": 1}}),
                                   signatures())
    assert not single.row_format and single.inputs["images"].tolist() == IMAGES
    assert named.inputs["images"].tolist() == IMAGES


def test_columnar_empty_batch_is_accepted_but_row_format_cannot_express_it():
    assert tfs.parse_rest_request('{"inputs": []}', signatures()).inputs["images"].shape == (0,)
    err = error_of({"instances": []})
    assert err.code == "INVALID_ARGUMENT" and "No values in 'instances' array" in err.message


def test_multiple_inputs_row_format_stacks_each_named_tensor():
    body = {"signature_name": "two_inputs", "instances": [{"a": [1, 2.5], "b": 3}, {"a": [3, 4], "b": 4}]}
    req = tfs.parse_rest_request(json.dumps(body), signatures())
    assert req.inputs["a"].dtype == np.float32 and req.inputs["a"].tolist() == [[1, 2.5], [3, 4]]
    assert req.inputs["b"].dtype == np.int64 and req.inputs["b"].tolist() == [3, 4]


def test_trailing_text_after_the_json_object_is_ignored_like_rapidjson():
    assert tfs.parse_rest_request('{"instances": ["abc"]} trailing', signatures()).inputs["images"].tolist() == [b"abc"]


def test_error_both_instances_and_inputs():
    err = error_of({"instances": [b64(b"x")], "inputs": [b64(b"x")]})
    assert err.code == "INVALID_ARGUMENT" and err.http_status == 400
    assert "expecting only one of 'inputs' or 'instances' keys to exist" in err.message


def test_error_neither_instances_nor_inputs():
    assert error_of({"signature_name": "predict"}).message == "Missing 'inputs' or 'instances' key"


def test_error_wrong_signature_name_over_rest():
    err = error_of({"signature_name": "nope", "instances": [b64(b"x")]})
    assert err.code == "INVALID_ARGUMENT" and err.message == 'Serving signature name: "nope" not found in signature def'


def test_error_signature_without_inputs():
    err = error_of({"signature_name": "__saved_model_init_op", "instances": [1]})
    assert err.message == "Failed to get input map for signature: __saved_model_init_op"


def test_error_signature_name_not_a_string():
    assert "'signature_name' key must be a string value" in error_of({"signature_name": 3, "instances": [1]}).message


def test_missing_b64_for_a_string_input_passes_the_text_through_as_tf_serving_does():
    # A plain JSON string is UTF-8 text for a string input: the graph then gets the base64 text, not the image.
    text = base64.b64encode(b"\xff\xd8\xff").decode()
    req = tfs.parse_rest_request(json.dumps({"instances": [text]}), signatures())
    assert req.inputs["images"].tolist() == [text.encode()]


def test_error_object_that_is_not_b64_for_a_single_string_input():
    err = error_of({"instances": [{"image": b64(b"x")}]})
    assert "does not have named input: image" in err.message and "Failed to process element: 0" in err.message


def test_error_malformed_base64():
    assert "Unable to base64 decode" in error_of({"instances": [{"b64": "not base64!"}]}).message


def test_error_number_for_a_string_input():
    err = error_of({"instances": [1]})
    assert "JSON Value: 1 Type: Number is not of expected type: string" in err.message


def test_error_nested_list_for_a_one_dimensional_input():
    err = error_of({"instances": [[b64(b"x")]]})
    assert err.message == "input 'images' has shape [1,1] but signature 'serving_default' takes [-1]"


def test_error_instances_of_different_shapes():
    body = {"signature_name": "two_inputs", "instances": [{"a": [1, 2], "b": 1}, {"a": [1, 2, 3], "b": 1}]}
    assert "Expecting tensor size: 2 but got: 3" in error_of(body).message


def test_error_instance_missing_a_named_input():
    body = {"signature_name": "two_inputs", "instances": [{"a": [1, 2]}]}
    assert "keys must be equal to: a,b" in error_of(body).message


def test_error_not_json_empty_and_not_an_object():
    assert error_of("").message == "JSON Parse error: The document is empty"
    assert error_of("{nope").message.startswith("JSON Parse error:")
    assert error_of("[1, 2]").message == "JSON Value: [1,2] Is not object"


def test_error_json_is_tf_servings_error_body():
    err = tfs.ServingError("INVALID_ARGUMENT", 'bad "thing"')
    assert json.loads(err.to_json()) == {"error": 'bad "thing"'} and err.http_status == 400
    assert tfs.ServingError("FAILED_PRECONDITION", "x").http_status == 400
    assert tfs.ServingError("NOT_FOUND", "x").http_status == 404


# ------------------------------------------------------------------------------------------ REST responses

OUTPUTS = {
    "classes": np.array([[7, 3], [1, 0]], np.int64),
    "probabilities": np.array([[0.2731145, 0.1], [0.5, 1e-5]], np.float32),
    "labels": np.array([[b"cat", b"dog"], [b"cow", b"emu"]], dtype=object),
}


def test_row_response_is_one_object_per_instance_with_float32_round_trip():
    text = tfs.format_rest_response(OUTPUTS, row_format=True)
    doc = json.loads(text)
    assert list(doc) == ["predictions"] and len(doc["predictions"]) == 2
    assert doc["predictions"][0] == {"classes": [7, 3], "labels": ["cat", "dog"],
                                     "probabilities": [0.273114502, 0.1]}
    back = tfs.parse_rest_response(text, {"probabilities": np.float32})
    assert np.array_equal(back["probabilities"], OUTPUTS["probabilities"])  # bit-exact float32
    assert back["labels"].tolist() == OUTPUTS["labels"].tolist()


def test_columnar_response_is_one_tensor_per_output():
    doc = json.loads(tfs.format_rest_response(OUTPUTS, row_format=False))
    assert doc["outputs"]["classes"] == [[7, 3], [1, 0]] and doc["outputs"]["labels"][1] == ["cow", "emu"]


def test_single_output_row_response_is_a_plain_list_and_bytes_outputs_are_b64():
    doc = json.loads(tfs.format_rest_response({"image_bytes": np.array([b"\x00\x01"], dtype=object)}, True))
    assert doc == {"predictions": [{"b64": "AAE="}]}


def test_float_text_follows_tf_servings_write_decimal():
    assert tfs.float_text(np.float32(0.5)) == "0.5"
    assert tfs.float_text(np.float32(2.0)) == "2.0"
    assert tfs.float_text(np.float32(1e-5)) == "1e-05"
    assert tfs.float_text(np.float32(0.2731145)) == "0.273114502"
    assert tfs.float_text(float("nan")) == "NaN" and tfs.float_text(float("-inf")) == "-Infinity"


def test_row_response_refuses_inconsistent_batch_sizes():
    with pytest.raises(tfs.ServingError, match="inconsistent batch size"):
        tfs.format_rest_response({"a": np.zeros((2, 1)), "b": np.zeros((3, 1))}, row_format=True)


def test_parse_rest_response_raises_on_error_body():
    with pytest.raises(tfs.ServingError, match="boom"):
        tfs.parse_rest_response('{"error": "boom"}')


def test_rest_request_body_shapes():
    assert tfs.rest_request_body([b"a"], "predict") == {"signature_name": "predict", "instances": [{"b64": "YQ=="}]}
    assert tfs.rest_request_body([b"a"], row_format=False, input_key="images") == {"inputs": {"images": [{"b64": "YQ=="}]}}


# ------------------------------------------------------------------------------------------ gRPC

def wire(request):
    """What crosses the network: serialized bytes, parsed again on the other side."""
    return predict_pb2.PredictRequest.FromString(request.SerializeToString())


def test_grpc_request_round_trip_keeps_bytes_exactly():
    request = wire(tfs.make_predict_request("resnet", {"images": IMAGES}, "predict", version=3))
    assert request.model_spec.version.value == 3
    name, inputs = tfs.predict_request_inputs(request, signatures())
    assert name == "predict" and inputs["images"].tolist() == IMAGES


def test_grpc_empty_signature_name_means_serving_default():
    request = tfs.make_predict_request("resnet", {"images": IMAGES}, "")
    assert tfs.predict_request_inputs(wire(request), signatures())[0] == "serving_default"


def test_grpc_error_wrong_signature_name_is_failed_precondition():
    with pytest.raises(tfs.ServingError) as exc:
        tfs.predict_request_inputs(wire(tfs.make_predict_request("m", {"images": IMAGES}, "nope")), signatures())
    assert exc.value.code == "FAILED_PRECONDITION" and exc.value.message == 'Serving signature key "nope" not found.'


def test_grpc_error_wrong_input_name():
    with pytest.raises(tfs.ServingError) as exc:
        tfs.predict_request_inputs(wire(tfs.make_predict_request("m", {"image": IMAGES})), signatures())
    assert exc.value.code == "INVALID_ARGUMENT"
    assert "Signature input alias: images(feed name: serving_default_images:0) not found in request" in exc.value.message


def test_grpc_error_extra_input():
    with pytest.raises(tfs.ServingError, match=r"input size does not match signature: 2!=1 .*Sent extra: \{x\}"):
        tfs.predict_request_inputs(wire(tfs.make_predict_request("m", {"images": IMAGES, "x": IMAGES})), signatures())


def test_grpc_error_wrong_dtype():
    with pytest.raises(tfs.ServingError, match="Expects arg\\[0\\] to be string but float is provided"):
        tfs.predict_request_inputs(wire(tfs.make_predict_request("m", {"images": np.zeros(2, np.float32)})),
                                   signatures())


def test_grpc_response_uses_typed_fields_like_as_proto_field():
    response = tfs.make_predict_response(OUTPUTS, "resnet", "serving_default", version=2)
    response = predict_pb2.PredictResponse.FromString(response.SerializeToString())
    assert response.model_spec.name == "resnet" and response.model_spec.version.value == 2
    probs = response.outputs["probabilities"]
    assert not probs.tensor_content and list(probs.float_val) == OUTPUTS["probabilities"].ravel().tolist()
    assert list(response.outputs["classes"].int64_val) == [7, 3, 1, 0]
    decoded = tfs.predict_response_outputs(response)
    assert np.array_equal(decoded["probabilities"], OUTPUTS["probabilities"])
    assert decoded["labels"].tolist() == OUTPUTS["labels"].tolist()


def test_error_from_tf_keeps_the_code_and_the_message_that_names_the_problem():
    try:
        tf.io.decode_jpeg(b"\xff\xd8\xff not a jpeg")
    except tf.errors.OpError as exc:
        err = tfs.error_from_tf(exc)
    assert err.code == "INVALID_ARGUMENT" and err.http_status == 400
    assert "function_node" not in err.message and "[Op:" not in err.message and err.message
