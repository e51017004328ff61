"""issue 13: validation's accuracy check sends model.samples_dir in requests the export's request bounds let through."""
from tools.validate import corpus
from tools.validate.accuracy import request_chunks
from tools.validate.samples import Sample

SMALL = corpus.png_of(corpus.photo(8, 8))


def sample(name: str, height: int, width: int, pad: int = 0) -> Sample:
    # A small PNG whose header declares height x width: Pillow reads only the header for the size.
    return Sample(name, corpus._png_size(SMALL, height, width) + b"\0" * pad, height, width, "png")


def names(chunks):
    return [[s.name for s in chunk] for chunk in chunks]


def test_chunks_stop_at_the_batch_size_without_bounds():
    samples = [sample(str(i), 10, 10) for i in range(5)]
    assert names(request_chunks(samples, {}, batch=2)) == [["0", "1"], ["2", "3"], ["4"]]


def test_chunks_stay_within_the_pixel_bound():
    samples = [sample(str(i), 3000, 4000) for i in range(5)]  # 12 MP each
    info = {"max_request_pixels": 25_000_000, "max_request_bytes": 10 ** 9}
    assert names(request_chunks(samples, info)) == [["0", "1"], ["2", "3"], ["4"]]


def test_chunks_stay_within_the_byte_bound_and_an_oversized_image_goes_alone():
    samples = [sample("a", 10, 10, pad=600), sample("b", 10, 10, pad=600), sample("big", 10, 10, pad=5000),
               sample("c", 10, 10)]
    size = len(samples[0].data)
    info = {"max_request_pixels": 10 ** 9, "max_request_bytes": 2 * size}
    assert names(request_chunks(samples, info)) == [["a", "b"], ["big"], ["c"]]
