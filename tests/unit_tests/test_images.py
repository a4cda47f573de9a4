"""Tests for ``langchain_nanobanana.images``: inputs, data URIs, local files, downloads, blocks."""

from __future__ import annotations

import ast
import base64
import re
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from langchain_nanobanana import _inputs, images
from langchain_nanobanana.errors import InvalidImageError
from langchain_nanobanana.images import (
    DEFAULT_MAX_DOWNLOAD_BYTES,
    MAX_IMAGE_BYTES,
    data_uri,
    image_content_block,
    safe_filename,
    sniff_image_mime,
    to_image_url,
    to_image_urls,
    validate_image_url,
)
from tests.helpers import image_size
from tests.images import (
    GIF_1X1,
    LONG_B64,
    PNG,
    PNG_B64,
    assert_good_message,
    jpeg_segment,
    make_bmp,
    make_ftyp,
    make_gif_header,
    make_jpeg,
    make_png,
    make_webp,
    padded_png,
    uri,
)

# --------------------------------------------------------------------------- constants, sniffing


@pytest.mark.parametrize("module", [images, _inputs], ids=["images", "_inputs"])
def test_module_level_imports_are_cheap(module: Any) -> None:
    """``requests`` only for typing, ``create_image_block`` lazily: importing the image modules
    (downloads in ``images``, pure inputs in ``_inputs``) stays cheap."""
    tree = ast.parse(Path(module.__file__).read_text())
    top: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            top += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            top.append(node.module or "")
    assert not [name for name in top if name.split(".")[0] in ("requests", "langchain_core")]


def test_input_functions_reexported_from_images() -> None:
    """The pure input functions live in ``_inputs``; ``images`` keeps exporting them."""
    for name in (
        "to_image_url",
        "to_image_urls",
        "validate_image_url",
        "sniff_image_mime",
        "data_uri",
        "MAX_IMAGE_BYTES",
    ):
        assert getattr(images, name) is getattr(_inputs, name), name
        assert name in images.__all__
    assert not hasattr(images, "image_size")  # a test helper now (tests.helpers.image_size)


def test_constants() -> None:
    assert MAX_IMAGE_BYTES == 10 * 2**20
    assert DEFAULT_MAX_DOWNLOAD_BYTES == 64 * 2**20


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (PNG, "image/png"),
        (make_jpeg(4, 3), "image/jpeg"),
        (GIF_1X1, "image/gif"),
        (make_gif_header(2, 2), "image/gif"),
        (make_webp(b"VP8X", 5, 6), "image/webp"),
        (make_bmp(2, 2), "image/bmp"),
        (make_ftyp(b"heic", b"mif1", b"heic"), "image/heic"),
        (make_ftyp(b"mif1", b"mif1", b"heic"), "image/heic"),
        (make_ftyp(b"mif1", b"mif1"), "image/heif"),
        (make_ftyp(b"avif", b"avif", b"mif1", b"miaf"), "image/avif"),
        (make_ftyp(b"mif1", b"mif1", b"avif"), "image/avif"),
    ],
)
def test_sniff_known_types(data: bytes, mime: str) -> None:
    assert sniff_image_mime(data) == mime


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x89PN",
        b"<html><body>not an image</body></html>",
        b"RIFF\x00\x00\x00\x00WAVEfmt ",
        b"BM this is just text that starts with BM",
        make_ftyp(b"isom", b"isom", b"mp41"),  # an MP4, not an image
        b"GIF88a",
        b"%PDF-1.7",
    ],
)
def test_sniff_rejects_non_images(data: bytes) -> None:
    assert sniff_image_mime(data) is None


# --------------------------------------------------------------------------- validate_image_url


@pytest.mark.parametrize(
    "url",
    [
        "https://platform.cdn.acedata.cloud/nanobanana/x.png",
        "http://cdn.acedata2.cloud/a/b.jpg?sig=1",
        "HTTPS://EXAMPLE.COM/X.PNG",
        "http://127.0.0.1:8080/img",
    ],
)
def test_http_urls_pass_unchanged(url: str) -> None:
    assert validate_image_url(url) == url
    assert to_image_url(url) == url


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://", "no host"),
        ("http:///etc/passwd", "no host"),
        ("https://exa mple.com/x.png", "whitespace"),
        ("https://example.com/x.png\n", "whitespace"),
        ("https://example.com:99999/x.png", "malformed"),
    ],
)
def test_bad_http_urls(url: str, problem: str) -> None:
    with pytest.raises(InvalidImageError) as err:
        validate_image_url(url)
    assert problem in assert_good_message(err, "image_urls")


def test_good_data_uri_passes_unchanged() -> None:
    value = uri(PNG)
    assert validate_image_url(value) is value
    for data, mime in [(GIF_1X1, "image/gif"), (make_jpeg(1, 1), "image/jpeg")]:
        assert validate_image_url(uri(data, mime)) == uri(data, mime)


@pytest.mark.parametrize(
    "payload",
    [
        PNG_B64[:40] + "\n" + PNG_B64[40:],  # whitespace inside
        PNG_B64 + "=",  # excess padding
        PNG_B64.rstrip("=")[:-1],  # truncated: wrong length
        PNG_B64.replace("+", "-").replace("/", "_") + "-_",  # url-safe alphabet
        PNG_B64[:8] + "!*" + PNG_B64[10:],  # not base64 at all
        PNG_B64[:8] + "é" + PNG_B64[9:],  # non-ASCII
        "",
    ],
)
def test_data_uri_bad_base64(payload: str) -> None:
    value = "data:image/png;base64," + payload
    with pytest.raises(InvalidImageError) as err:
        validate_image_url(value, field="image_urls[1]")
    assert_good_message(err, "image_urls[1]")


@pytest.mark.parametrize(
    ("declared", "data", "found"),
    [
        ("image/jpeg", PNG, "image/png"),
        ("image/png", make_jpeg(2, 2), "image/jpeg"),
        ("image/webp", GIF_1X1, "image/gif"),
        ("image/gif", make_bmp(2, 2), "image/bmp"),
        ("image/jpg", PNG, "image/png"),  # an alias of image/jpeg: still not PNG
    ],
)
def test_data_uri_declared_type_must_match_bytes(declared: str, data: bytes, found: str) -> None:
    value = uri(data, declared)
    with pytest.raises(InvalidImageError) as err:
        validate_image_url(value, field="image_urls[0]")
    message = assert_good_message(err, "image_urls[0]")
    assert declared in message and found in message
    assert validate_image_url(uri(data, found)) == uri(data, found)  # the right label passes


@pytest.mark.parametrize(
    ("declared", "data"),
    [
        ("image/jpg", make_jpeg(2, 2)),
        ("image/pjpeg", make_jpeg(2, 2)),
        ("IMAGE/PNG", PNG),
        ("image/x-ms-bmp", make_bmp(2, 2)),
        ("image/heif", make_ftyp(b"heic", b"mif1", b"heic")),
        ("image/heic", make_ftyp(b"mif1", b"mif1")),
    ],
)
def test_data_uri_aliases_of_the_sniffed_type_pass(declared: str, data: bytes) -> None:
    value = uri(data, declared)
    assert validate_image_url(value) == value


def test_data_uri_payload_not_an_image() -> None:
    with pytest.raises(InvalidImageError) as err:
        validate_image_url(uri(b"<html>hello</html>" * 10))
    assert "not a PNG" in assert_good_message(err, "image_urls")


@pytest.mark.parametrize(
    "value",
    [
        "data:text/plain;base64," + PNG_B64,
        "data:image/png," + PNG_B64,  # not base64-encoded form
        "data:;base64," + PNG_B64,
        "data:image/png;charset=utf-8;base64," + PNG_B64,
        "data:image/png;base64" + PNG_B64,  # no comma
    ],
)
def test_malformed_data_uris(value: str) -> None:
    with pytest.raises(InvalidImageError) as err:
        validate_image_url(value)
    assert "malformed data URI" in assert_good_message(err, "image_urls")


def test_data_uri_size_limit_exact() -> None:
    assert validate_image_url(uri(padded_png(MAX_IMAGE_BYTES)))
    with pytest.raises(InvalidImageError) as err:
        validate_image_url(uri(padded_png(MAX_IMAGE_BYTES + 1)))
    message = assert_good_message(err, "image_urls")
    assert str(MAX_IMAGE_BYTES + 1) in message and str(MAX_IMAGE_BYTES) in message


def test_huge_data_uri_fails_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(payload: str) -> bytes:
        raise AssertionError("decoded a payload that was too large by its length")

    monkeypatch.setattr(_inputs, "_b64decode_strict", never)
    with pytest.raises(InvalidImageError, match="over"):
        validate_image_url("data:image/png;base64," + "A" * (20 * 2**20))


def test_non_string_and_other_schemes() -> None:
    with pytest.raises(InvalidImageError):
        validate_image_url(123)  # type: ignore[arg-type]
    for value in ["ftp://example.com/x.png", "file:///etc/passwd", "/tmp/x.png", "x.png"]:
        with pytest.raises(InvalidImageError) as err:
            validate_image_url(value)
        assert "not an http(s) URL" in assert_good_message(err, "image_urls")


def test_message_truncates_value() -> None:
    long_url = "ftp://example.com/" + "a" * 500
    with pytest.raises(InvalidImageError) as err:
        validate_image_url(long_url)
    message = str(err.value)
    assert "ftp://example.com/aaa" in message and "a" * 100 not in message and "..." in message


# --------------------------------------------------------------------------- to_image_url: bytes


def test_bytes_become_data_uri() -> None:
    value = to_image_url(PNG)
    assert value == "data:image/png;base64," + PNG_B64
    assert to_image_url(bytearray(GIF_1X1)).startswith("data:image/gif;base64,")  # type: ignore[arg-type]
    assert base64.b64decode(to_image_url(GIF_1X1).split(",", 1)[1]) == GIF_1X1
    assert validate_image_url(value) == value


def test_bytes_not_image_and_too_large() -> None:
    with pytest.raises(InvalidImageError) as err:
        to_image_url(b"just some text", field="images")
    message = str(err.value)
    assert message.startswith("images: ") and "<14 bytes>" in message and "Allowed:" in message
    assert to_image_url(padded_png(MAX_IMAGE_BYTES)).startswith("data:image/png;base64,")
    with pytest.raises(InvalidImageError) as err:
        to_image_url(padded_png(MAX_IMAGE_BYTES + 1))
    assert str(MAX_IMAGE_BYTES + 1) in str(err.value)
    assert LONG_B64.search(str(err.value)) is None


def test_unsupported_types() -> None:
    for value in [123, None, 1.5, {"url": "x"}]:
        with pytest.raises(InvalidImageError, match="unsupported type"):
            to_image_url(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    ["file:///etc/passwd", "ftp://example.com/a.png", "javascript:alert(1)", "gopher://x/1"],
)
def test_other_schemes_refused(value: str) -> None:
    with pytest.raises(InvalidImageError) as err:
        to_image_url(value)
    assert "unsupported URL scheme" in assert_good_message(err, "image_urls")


# --------------------------------------------------------------------------- to_image_url: files


def test_local_file_str_and_path(tmp_path: Path) -> None:
    path = tmp_path / "cat.png"
    path.write_bytes(PNG)
    expected = "data:image/png;base64," + PNG_B64
    assert to_image_url(path) == expected
    assert to_image_url(str(path)) == expected
    jpg = tmp_path / "photo.jpeg"
    jpg.write_bytes(make_jpeg(8, 8))
    assert to_image_url(jpg).startswith("data:image/jpeg;base64,")


def test_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.gif").write_bytes(GIF_1X1)
    monkeypatch.chdir(tmp_path)
    assert to_image_url("a.gif").startswith("data:image/gif;base64,")
    assert to_image_url("a.gif", allowed_image_dir=".").startswith("data:image/gif;base64,")


def test_local_file_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidImageError, match="cannot read file"):
        to_image_url(tmp_path / "missing.png")
    with pytest.raises(InvalidImageError, match="not a regular file"):
        to_image_url(tmp_path)
    text = tmp_path / "notes.png"
    text.write_text("not really a png")
    with pytest.raises(InvalidImageError, match="not a PNG"):
        to_image_url(text)
    with pytest.raises(InvalidImageError, match="empty value"):
        to_image_url("   ")


def test_local_file_size_checked_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exact = tmp_path / "exact.png"
    exact.write_bytes(padded_png(MAX_IMAGE_BYTES))
    assert to_image_url(exact).startswith("data:image/png;base64,")

    big = tmp_path / "big.png"
    with big.open("wb") as fh:
        fh.write(PNG)
        fh.truncate(MAX_IMAGE_BYTES + 1)  # sparse: no 10 MiB written

    def no_open(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the file was opened before its size was checked")

    monkeypatch.setattr(images, "open", no_open, raising=False)
    with pytest.raises(InvalidImageError) as err:
        to_image_url(big)
    assert str(MAX_IMAGE_BYTES + 1) in str(err.value)


def test_allow_local_paths_false(tmp_path: Path) -> None:
    path = tmp_path / "cat.png"
    path.write_bytes(PNG)
    for value in (path, str(path)):
        with pytest.raises(InvalidImageError) as err:
            to_image_url(value, allow_local_paths=False)
        assert "local file paths are not allowed" in assert_good_message(err, "image_urls")
    # URLs and bytes are still fine
    assert to_image_url(PNG, allow_local_paths=False).startswith("data:image/png")
    assert to_image_url("https://x.org/a.png", allow_local_paths=False) == "https://x.org/a.png"


@pytest.fixture
def sandbox(tmp_path: Path) -> tuple[Path, Path]:
    allowed = tmp_path / "allowed"
    (allowed / "sub").mkdir(parents=True)
    (allowed / "sub" / "ok.png").write_bytes(PNG)
    outside = tmp_path / "secret.png"
    outside.write_bytes(PNG)
    return allowed, outside


def test_allowed_dir_accepts_inside(sandbox: tuple[Path, Path]) -> None:
    allowed, _ = sandbox
    assert to_image_url(allowed / "sub" / "ok.png", allowed_image_dir=allowed).startswith("data:")
    assert to_image_url(str(allowed / "sub" / ".." / "sub" / "ok.png"), allowed_image_dir=allowed)


def test_allowed_dir_refuses_dotdot_escape(sandbox: tuple[Path, Path]) -> None:
    allowed, outside = sandbox
    sneaky = f"{allowed}/sub/../../{outside.name}"
    assert Path(sneaky).exists()
    with pytest.raises(InvalidImageError) as err:
        to_image_url(sneaky, allowed_image_dir=allowed)
    assert "resolves outside" in str(err.value) and "image_urls" in str(err.value)
    with pytest.raises(InvalidImageError):
        to_image_url(outside, allowed_image_dir=str(allowed))


def test_allowed_dir_refuses_symlink_escape(sandbox: tuple[Path, Path]) -> None:
    allowed, outside = sandbox
    link = allowed / "sub" / "innocent.png"
    link.symlink_to(outside)
    dir_link = allowed / "linked_dir"
    dir_link.symlink_to(outside.parent, target_is_directory=True)
    for value in (link, dir_link / outside.name):
        with pytest.raises(InvalidImageError, match="resolves outside"):
            to_image_url(value, allowed_image_dir=allowed)
    # a prefix-sharing sibling ("allowed_evil") is not "inside" allowed
    evil = allowed.parent / "allowed_evil"
    evil.mkdir()
    (evil / "x.png").write_bytes(PNG)
    with pytest.raises(InvalidImageError, match="resolves outside"):
        to_image_url(evil / "x.png", allowed_image_dir=allowed)


def test_allowed_dir_itself_a_symlink(sandbox: tuple[Path, Path], tmp_path: Path) -> None:
    allowed, _ = sandbox
    alias = tmp_path / "alias"
    alias.symlink_to(allowed, target_is_directory=True)
    assert to_image_url(alias / "sub" / "ok.png", allowed_image_dir=alias).startswith("data:")
    assert to_image_url(allowed / "sub" / "ok.png", allowed_image_dir=alias).startswith("data:")


# --------------------------------------------------------------------------- to_image_urls


def test_to_image_urls_single_and_many(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(PNG)
    assert to_image_urls("https://x.org/a.png") == ["https://x.org/a.png"]
    assert to_image_urls(PNG) == ["data:image/png;base64," + PNG_B64]
    assert to_image_urls(path) == ["data:image/png;base64," + PNG_B64]
    mixed = to_image_urls(["https://x.org/a.png", PNG, path, uri(GIF_1X1, "image/gif")])
    assert mixed[0] == "https://x.org/a.png" and all(u.startswith("data:") for u in mixed[1:])
    assert to_image_urls(iter(["https://x.org/a.png"])) == ["https://x.org/a.png"]  # type: ignore[arg-type]
    assert to_image_urls([]) == []


def test_to_image_urls_error_names_index(tmp_path: Path) -> None:
    with pytest.raises(InvalidImageError) as err:
        to_image_urls(["https://x.org/a.png", PNG, "ftp://x.org/c.png"])
    assert str(err.value).startswith("image_urls[2]: ")
    with pytest.raises(InvalidImageError) as err:
        to_image_urls([PNG, b"nope"], field="images")
    assert str(err.value).startswith("images[1]: ")
    with pytest.raises(InvalidImageError, match=r"image_urls\[0\]: local file paths"):
        to_image_urls([tmp_path / "x.png"], allow_local_paths=False)
    with pytest.raises(InvalidImageError, match="expected a list"):
        to_image_urls(42)  # type: ignore[arg-type]


# ------------------------------------------------------------------------- data_uri, content blocks


def test_data_uri() -> None:
    assert data_uri(PNG) == "data:image/png;base64," + PNG_B64
    assert data_uri(b"abc", "image/x-custom") == "data:image/x-custom;base64,YWJj"
    with pytest.raises(InvalidImageError):
        data_uri(b"abc")


def test_content_block_url() -> None:
    block = image_content_block("https://cdn.acedata2.cloud/a.png")
    assert block["type"] == "image"
    assert block["url"] == "https://cdn.acedata2.cloud/a.png"
    assert "base64" not in block


def test_content_block_data_uri() -> None:
    block = image_content_block(to_image_url(GIF_1X1))
    assert block["type"] == "image"
    assert block["mime_type"] == "image/gif"
    assert base64.b64decode(block["base64"]) == GIF_1X1
    assert "url" not in block


@pytest.mark.parametrize(
    "value", ["ftp://x/a.png", "data:text/plain;base64,YWJj", "/tmp/a.png", "https://"]
)
def test_content_block_refuses(value: str) -> None:
    with pytest.raises(InvalidImageError):
        image_content_block(value)


# --------------------------------------------------------------------------- safe_filename


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cat.png", "cat.png"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system32\\evil.exe", "evil.exe"),
        ("/absolute/path/x.jpg", "x.jpg"),
        ("..", "image"),
        ("...", "image"),
        ("", "image"),
        ("/", "image"),
        (".hidden", "hidden"),
        ("a\x00b\x01c\x7f.png", "abc.png"),
        ("my image (1).png", "my_image__1_.png"),
        ("ünïcode.png", "_n_code.png"),
        ("CON.png", "_CON.png"),
        ("nul", "_nul"),
        ("trailing.", "trailing"),
    ],
)
def test_safe_filename(name: str, expected: str) -> None:
    assert safe_filename(name) == expected


def test_safe_filename_length_and_default() -> None:
    long = safe_filename("x" * 300 + ".png")
    assert len(long) == 100 and long.endswith(".png")
    assert len(safe_filename("y" * 300)) == 100
    assert safe_filename("..", default="fallback.png") == "fallback.png"
    assert safe_filename("..", default="../..") == "image"


@given(st.text())
def test_safe_filename_property(name: str) -> None:
    result = safe_filename(name)
    assert re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}", result), result
    assert result not in (".", "..")


# --------------------------------------------------------------------------- image_size


@pytest.mark.parametrize(
    ("data", "size"),
    [
        (make_png(3, 2), (3, 2)),
        (make_png(640, 1), (640, 1)),
        (GIF_1X1, (1, 1)),
        (make_gif_header(300, 200), (300, 200)),
        (make_jpeg(1024, 768), (1024, 768)),
        (make_jpeg(17, 9, sof=0xC2), (17, 9)),  # progressive
        (make_webp(b"VP8X", 4096, 2160), (4096, 2160)),
        (make_webp(b"VP8L", 100, 50), (100, 50)),
        (make_webp(b"VP8 ", 320, 240), (320, 240)),
        (make_bmp(7, 5), (7, 5)),
    ],
)
def test_image_size(data: bytes, size: tuple[int, int]) -> None:
    assert image_size(data) == size


def test_png_is_really_decodable() -> None:
    # our hand-built PNG is a valid file: chunk CRCs and zlib data check out
    data = make_png(3, 2)
    offset, kinds = 8, []
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, body = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc
        kinds.append(kind)
        offset += 12 + length
    assert kinds == [b"IHDR", b"IDAT", b"IEND"]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not an image",
        PNG[:20],  # truncated IHDR
        b"\xff\xd8\xff",  # JPEG with no SOF
        b"\xff\xd8" + jpeg_segment(0xE0, b"JFIF") + b"\x00garbage",
        make_ftyp(b"heic"),  # known type, size not parsed
        b"RIFF\x00\x00\x00\x00WEBPVP8?",
    ],
)
def test_image_size_unknown(data: bytes) -> None:
    assert image_size(data) is None
