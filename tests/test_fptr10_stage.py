"""scripts/stage-libfptr10 picks the right libfptr10.so out of DTO10-like archives."""

from __future__ import annotations

import io
import lzma
import struct
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent.parent / "scripts" / "stage-libfptr10"


def fake_elf(machine: int, word: int, flags: int = 0, payload: bytes = b"") -> bytes:
    header = bytearray(64)
    header[:4] = b"\x7fELF"
    header[4] = 2 if word == 64 else 1
    header[5] = 1  # little-endian
    struct.pack_into("<H", header, 18, machine)
    struct.pack_into("<I", header, 36, flags)
    return bytes(header) + payload


ARM64 = fake_elf(0xB7, 64, payload=b"arm64 build")
ARMHF = fake_elf(0x28, 32, flags=0x5000400, payload=b"armhf build")
ARMEL = fake_elf(0x28, 32, flags=0x5000200, payload=b"armel build")
X64 = fake_elf(0x3E, 64, payload=b"x64 build")


def stage(archive: Path, arch: str, dest: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(SCRIPT), "--arch", arch, str(archive), str(dest)]
    return subprocess.run(command, capture_output=True, text=True)


def deb_with(path_in_package: str, content: bytes) -> bytes:
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w") as tar:
        info = tarfile.TarInfo(path_in_package)
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    data = lzma.compress(tar_bytes.getvalue())
    out = bytearray(b"!<arch>\n")
    for name, body in ((b"debian-binary", b"2.0\n"), (b"data.tar.xz", data)):
        header = name.ljust(16) + b"0".ljust(12) + b"0".ljust(6) * 2 + b"100644".ljust(8)
        out += header + str(len(body)).encode().ljust(10) + b"`\n" + body
        if len(body) % 2:
            out += b"\n"
    return bytes(out)


@pytest.fixture
def dto_zip(tmp_path: Path) -> Path:
    archive = tmp_path / "10.10.7.0.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("10.10.7.0/linux-arm64/libfptr10.so", ARM64)
        zf.writestr("10.10.7.0/linux-armhf/libfptr10.so", ARMHF)
        zf.writestr("10.10.7.0/linux-armel/libfptr10.so", ARMEL)
        zf.writestr("10.10.7.0/linux-x64/libfptr10.so", X64)
        zf.writestr("10.10.7.0/doc/readme.txt", "docs")
    return archive


@pytest.mark.parametrize(("arch", "expected"), [("arm64", ARM64), ("armhf", ARMHF), ("amd64", X64)])
def test_each_architecture_from_a_zip(
    dto_zip: Path, tmp_path: Path, arch: str, expected: bytes
) -> None:
    result = stage(dto_zip, arch, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "libfptr10.so").read_bytes() == expected


def test_tar_gz_with_a_deb_inside(tmp_path: Path) -> None:
    archive = tmp_path / "dto.tar.gz"
    deb = deb_with("./usr/lib/libfptr10.so.10.10.7", ARM64)
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("dto/linux/deb/libfptr10_10.10.7_arm64.deb")
        info.size = len(deb)
        tar.addfile(info, io.BytesIO(deb))
    result = stage(archive, "arm64", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "libfptr10.so").read_bytes() == ARM64


def test_missing_architecture_is_a_clear_error(tmp_path: Path) -> None:
    archive = tmp_path / "only-x64.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("linux-x64/libfptr10.so", X64)
    result = stage(archive, "armhf", tmp_path / "out")
    assert result.returncode == 2
    assert "no libfptr10.so for armhf" in result.stderr
    assert "amd64: 1" in result.stderr
    assert not (tmp_path / "out").exists()
