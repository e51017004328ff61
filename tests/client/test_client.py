"""The client against the TF Serving test double (REST and gRPC), plus its pure parts: URL parsing, endpoint
checks, image collection and the table."""
from __future__ import annotations

import pytest

from tools.client import Labelled, format_table, images, label_images
from tools.client.cli import main as client_main
from tools.client.images import ImageInput, collect, image_format, sample_jpeg
from tools.client.transport import Endpoint, Prediction, parse_url
from tools.errors import UserError

PROTOCOLS = ["rest", "grpc"]
TINY_LABELS = {"red", "green", "blue", "gray"}


def endpoint_args(double, protocol: str) -> list[str]:
    if protocol == "grpc":
        return ["--grpc", "--host", "127.0.0.1", "--port", str(double.grpc_port)]
    return ["--url", double.rest_url]


def run(capsys, args: list[str]) -> tuple[int, str, str]:
    code = client_main(args)
    out, err = capsys.readouterr()
    return code, out, err


def error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


# ---------------------------------------------------------------------------------------------- against the double


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_labels_samples_in_batches(serving_double, tiny_export, capsys, protocol):
    code, out, err = run(capsys, ["--samples", "3", "--batch-size", "2", "--model", tiny_export.name]
                         + endpoint_args(serving_double, protocol))
    assert code == 0, err
    assert [c.batch for c in serving_double.calls] == [2, 1]
    assert {c.protocol for c in serving_double.calls} == {protocol}
    assert all(c.version == 2 and c.signature == "serving_default" for c in serving_double.calls)  # latest
    assert "3 images in 2 requests" in out
    for n in (1, 2, 3):
        assert f"sample-{n}.jpg" in out
    assert any(label in out for label in TINY_LABELS)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_predictions_are_the_servables(serving_double, tiny_export, protocol):
    import tensorflow as tf

    ep = Endpoint(model=tiny_export.name, host="127.0.0.1", grpc=protocol == "grpc",
                  port=serving_double.grpc_port if protocol == "grpc" else serving_double.rest_port)
    inputs = images.samples(2, seed=5)
    results, _ = label_images(ep, inputs, batch_size=2)
    loaded = tf.saved_model.load(str(tiny_export.dirs["channels_last"]))
    expected = loaded.signatures["serving_default"](images=tf.constant([i.data for i in inputs]))
    for i, item in enumerate(results):
        assert item.prediction.classes == expected["classes"].numpy()[i].tolist()
        assert item.prediction.probabilities == pytest.approx(expected["probabilities"].numpy()[i].tolist(), abs=1e-5)
        assert item.prediction.labels == [b.decode() for b in expected["labels"].numpy()[i]]
        assert item.prediction.probabilities == sorted(item.prediction.probabilities, reverse=True)
        assert len(item.prediction.classes) == tiny_export.config.model.top_k


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("pick, version", [(["--version", "1"], 1), (["--label", "stable"], 1),
                                           (["--label", "canary"], 2), ([], 2)])
def test_version_and_label_pick_the_servable(serving_double, tiny_export, capsys, protocol, pick, version):
    code, _, err = run(capsys, ["--samples", "1", "--model", tiny_export.name] + pick
                       + endpoint_args(serving_double, protocol))
    assert code == 0, err
    assert serving_double.calls[-1].version == version


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_predict_alias_signature(serving_double, tiny_export, capsys, protocol):
    code, out, err = run(capsys, ["--samples", "1", "--model", tiny_export.name, "--signature", "predict"]
                         + endpoint_args(serving_double, protocol))
    assert code == 0, err
    assert serving_double.calls[-1].signature == "predict"
    assert "signature 'predict'" in out


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("args, expected", [
    (["--model", "nope"], "model 'nope' (latest version) not found at"),
    (["--version", "9"], "Servable not found for request: Specific(tiny, 9)"),
    (["--label", "nightly"], "Unrecognized servable version label: nightly"),
    (["--signature", "nope"], '"nope" not found'),
])
def test_wrong_servable_is_one_clear_line(serving_double, tiny_export, capsys, protocol, args, expected):
    args = ["--samples", "1"] + (args if "--model" in args else ["--model", tiny_export.name] + args)
    code, out, err = run(capsys, args + endpoint_args(serving_double, protocol))
    assert code == 2
    assert out == ""
    assert expected in error_line(err)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_server_error_names_the_request(serving_double, tiny_export, capsys, tmp_path, protocol):
    bad = tmp_path / "cut.jpg"
    bad.write_bytes(sample_jpeg(60, 80)[:200])  # a JPEG header and then nothing: passes the client, not the server
    code, _, err = run(capsys, [str(bad), "--model", tiny_export.name] + endpoint_args(serving_double, protocol))
    assert code == 2
    line = error_line(err)
    assert "answered" in line and ("400" in line or "INVALID_ARGUMENT" in line)
    assert "cut.jpg" in line
    assert serving_double.calls[-1].error


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_unreachable_server(closed_port, capsys, protocol):
    args = ["--grpc", "--host", "127.0.0.1", "--port", str(closed_port)] if protocol == "grpc" \
        else ["--url", f"http://127.0.0.1:{closed_port}"]
    code, _, err = run(capsys, ["--samples", "1", "--model", "tiny", "--timeout", "5"] + args)
    assert code == 2
    line = error_line(err)
    assert f"cannot reach TF Serving at 127.0.0.1:{closed_port}" in line
    assert "connection refused" in line


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_timeout(serving_double, tiny_export, capsys, protocol):
    serving_double.delay = 1.0
    code, _, err = run(capsys, ["--samples", "1", "--model", tiny_export.name, "--timeout", "0.2"]
                       + endpoint_args(serving_double, protocol))
    assert code == 2
    assert "within 0.2 s" in error_line(err)


def test_rest_url_that_is_not_tf_serving(serving_double, capsys):
    # The double answers a path outside /v1/ with a bare 404, as TF Serving does: not JSON, so not a servable.
    code, _, err = run(capsys, ["--samples", "1", "--model", "tiny", "--url", serving_double.rest_url + "/ingress"])
    assert code == 2
    assert "not TF Serving's JSON" in error_line(err)


# ---------------------------------------------------------------------------------------------- TLS


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_tls_with_ca_certificate(tls_serving_double, tiny_export, capsys, protocol):
    args = ["--samples", "1", "--model", tiny_export.name, "--ca-cert", str(tls_serving_double.ca_cert)]
    if protocol == "grpc":
        args += ["--grpc", "--tls", "--host", "127.0.0.1", "--port", str(tls_serving_double.grpc_port)]
    else:
        args += ["--url", tls_serving_double.rest_url]
        assert tls_serving_double.rest_url.startswith("https://")
    code, out, err = run(capsys, args)
    assert code == 0, err
    assert "1 image in 1 request" in out


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_tls_unknown_ca_is_refused(tls_serving_double, tiny_export, capsys, protocol):
    args = ["--samples", "1", "--model", tiny_export.name, "--timeout", "5"]
    if protocol == "grpc":
        args += ["--grpc", "--tls", "--host", "127.0.0.1", "--port", str(tls_serving_double.grpc_port)]
    else:
        args += ["--url", tls_serving_double.rest_url]
    code, _, err = run(capsys, args)
    assert code == 2
    line = error_line(err)
    port = tls_serving_double.grpc_port if protocol == "grpc" else tls_serving_double.rest_port
    assert f"TLS connection to 127.0.0.1:{port} failed" in line
    assert "--ca-cert" in line


def test_rest_insecure_skip_verify(tls_serving_double, tiny_export, capsys):
    code, _, err = run(capsys, ["--samples", "1", "--model", tiny_export.name, "--url", tls_serving_double.rest_url,
                                "--insecure-skip-verify"])
    assert code == 0, err


def test_plain_client_against_tls_server(tls_serving_double, tiny_export, capsys):
    url = tls_serving_double.rest_url.replace("https://", "http://")
    code, _, err = run(capsys, ["--samples", "1", "--model", tiny_export.name, "--url", url, "--timeout", "5"])
    assert code == 2
    assert "cannot reach TF Serving" in error_line(err) or "not TF Serving's JSON" in error_line(err)


# ---------------------------------------------------------------------------------------------- options and inputs


@pytest.mark.parametrize("url, grpc, expected", [
    ("http://serving.example.com:8501", False,
     {"host": "serving.example.com", "port": 8501, "tls": False, "base_path": ""}),
    ("https://serving.example.com/tf/", False,
     {"host": "serving.example.com", "port": None, "tls": True, "base_path": "/tf"}),
    ("localhost:8500", True, {"host": "localhost", "port": 8500, "tls": False, "base_path": ""}),
    ("grpcs://10.0.0.1:443", True, {"host": "10.0.0.1", "port": 443, "tls": True, "base_path": ""}),
])
def test_parse_url(url, grpc, expected):
    assert parse_url(url, grpc) == expected


@pytest.mark.parametrize("url, grpc, message", [
    ("localhost:8501", False, "needs a scheme"),
    ("grpc://localhost:8500", False, "gRPC needs --grpc"),
    ("http://localhost:8501", True, "with --grpc"),
    ("http://localhost:8501/v1/models/resnet:predict", False, "base URL"),
    ("http://localhost:99999", False, "invalid port"),
])
def test_parse_url_refuses(url, grpc, message):
    with pytest.raises(UserError, match=message):
        parse_url(url, grpc)


@pytest.mark.parametrize("fields, message", [
    ({"version": 1, "label": "stable"}, "either a version or a label"),
    ({"ca_cert": "ca.pem"}, "need TLS"),
    ({"grpc": True, "tls": True, "insecure_skip_verify": True}, "REST only"),
    ({"tls": True, "ca_cert": "/nonexistent/ca.pem"}, "does not exist"),
    ({"timeout": 0}, "timeout"),
])
def test_endpoint_refuses(fields, message):
    with pytest.raises(UserError, match=message):
        Endpoint(model="m", **fields)


def test_endpoint_urls():
    assert Endpoint(model="resnet").predict_url == "http://localhost:8501/v1/models/resnet:predict"
    assert Endpoint(model="resnet", version=3, tls=True, port=443, base_path="/tf").predict_url == \
        "https://localhost:443/tf/v1/models/resnet/versions/3:predict"
    assert Endpoint(model="resnet", label="canary").model_path == "/v1/models/resnet/labels/canary"
    assert Endpoint(model="resnet", grpc=True).address == "localhost:8500"


def test_collect_reads_files_and_image_directories(tmp_path):
    (tmp_path / "b.jpg").write_bytes(sample_jpeg(20, 30, seed=1))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.PNG").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    (tmp_path / "notes.txt").write_text("not an image")
    found = collect([tmp_path])
    assert [i.name for i in found] == [str(tmp_path / "b.jpg"), str(tmp_path / "sub" / "a.PNG")]
    assert image_format(found[0].data) == "jpeg" and image_format(found[1].data) == "png"


@pytest.mark.parametrize("setup, message", [
    (lambda d: d / "missing.jpg", "does not exist"),
    (lambda d: (d / "empty.jpg").write_bytes(b"") and d / "empty.jpg" or d / "empty.jpg", "is empty"),
    (lambda d: (d / "x.jpg").write_text("hello") and d / "x.jpg", "is not a JPEG, PNG, GIF or BMP image"),
    (lambda d: (d / "only").mkdir() or d / "only", "holds no image files"),
])
def test_collect_refuses(tmp_path, setup, message):
    with pytest.raises(UserError, match=message):
        collect([setup(tmp_path)])


def test_cli_refuses_bad_image_before_sending(tmp_path, capsys, closed_port):
    bad = tmp_path / "notes.jpg"
    bad.write_text("hello")
    code, _, err = run(capsys, [str(bad), "--model", "m", "--port", str(closed_port)])
    assert code == 2
    assert "notes.jpg is not a JPEG" in error_line(err)


def test_cli_needs_images(capsys, closed_port):
    code, _, err = run(capsys, ["--model", "m", "--port", str(closed_port)])
    assert code == 2
    assert "no images" in error_line(err)


def test_cli_url_and_port_conflict(capsys):
    code, _, err = run(capsys, ["--samples", "1", "--model", "m", "--url", "http://x:1", "--port", "2"])
    assert code == 2
    assert "either --url or --host/--port" in error_line(err)


def test_samples_are_deterministic_photo_sized_jpegs():
    from PIL import Image
    import io

    a, b = images.samples(2), images.samples(2)
    assert [x.data for x in a] == [x.data for x in b]
    assert a[0].data != a[1].data
    with Image.open(io.BytesIO(a[1].data)) as im:
        assert im.format == "JPEG" and im.size == (300, 300)


def test_format_table():
    results = [
        Labelled(ImageInput("cat.jpg", b""), Prediction([3, 1], [0.75, 0.25], ["tabby", "tiger cat"])),
        Labelled(ImageInput("dog.jpg", b""), Prediction([7, 2], [0.5, 0.125], ["", "x"])),
    ]
    text = format_table(results)
    lines = text.splitlines()
    assert lines[0].split() == ["image", "#", "label", "class", "probability"]
    assert "cat.jpg" in lines[2] and "tabby" in lines[2] and "0.7500" in lines[2] and "███████████████" in lines[2]
    assert lines[3].startswith(" ") and "tiger cat" in lines[3]
    assert lines[4] == ""
    assert "dog.jpg" in lines[5] and " - " in lines[5]  # no label: a dash, the class index still shown
