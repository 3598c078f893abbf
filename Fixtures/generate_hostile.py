#!/usr/bin/env python3
"""Hostile torch.save-style pickles for the catalogue test (Tests/SKHostileInputTests), written
with Python's own pickler and zipfile (run by hand; outputs committed in Fixtures/hostile/).

Each file is a zip archive laid out as torch.save writes it (archive/data.pkl, archive/data/KEY,
archive/byteorder), whose pickle uses only the globals torch emits for tensors, so that it reaches
the parts of SinkKit's restricted unpickler a real attacker would aim at:

    python3 Fixtures/generate_hostile.py
"""
import collections, io, pickle, struct, sys, types, zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parent / "hostile"

# Stand-ins for the torch globals, so the pickler writes torch's module and names.
torch = types.ModuleType("torch"); utils = types.ModuleType("torch._utils")
def _rebuild_tensor_v2(*a): pass
_rebuild_tensor_v2.__module__ = "torch._utils"
utils._rebuild_tensor_v2 = _rebuild_tensor_v2
class FloatStorage: pass
FloatStorage.__module__ = "torch"
torch.FloatStorage = FloatStorage; torch._utils = utils
sys.modules["torch"] = torch; sys.modules["torch._utils"] = utils


class Storage:
    def __init__(self, key, numel): self.key, self.numel = key, numel


class Tensor:
    def __init__(self, storage, shape, stride, offset=0):
        self.storage, self.shape, self.stride, self.offset = storage, shape, stride, offset
    def __reduce__(self):
        return (_rebuild_tensor_v2, (self.storage, self.offset, self.shape, self.stride, False, collections.OrderedDict()))


class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", FloatStorage, obj.key, "cpu", obj.numel)
        return None


def dumps(obj):
    b = io.BytesIO()
    Pickler(b, protocol=2).dump(obj)
    return b.getvalue()


def archive(name, pkl, storages=None, compress=False, truncate=None):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", compression=zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/byteorder", "little")
        for k, data in (storages or {}).items():
            z.writestr(f"archive/data/{k}", data)
    data = b.getvalue()
    if truncate:
        data = data[:truncate]
    (OUT / name).write_bytes(data)


def main():
    OUT.mkdir(exist_ok=True)
    w = "model.layers.0.input_layernorm.weight"
    ok = Storage("0", 32)
    f32 = struct.pack("<32f", *([1.0] * 32))
    # A well-formed file, for contrast: the catalogue's hostile variants change one thing each.
    archive("valid.bin", dumps({w: Tensor(ok, (32,), (1,))}), {"0": f32})
    # 60,000 nested tuples: unbounded recursion in a reader that follows them (or frees them).
    nest = b"\x80\x02)" + b"\x85" * 60000 + b"."
    archive("nested-tuples.bin", nest)
    # A storage claiming 2^62 elements: 2^62 × 4 bytes overflows a 64-bit size.
    archive("storage-2e62.bin", dumps({w: Tensor(Storage("0", 1 << 62), (32,), (1,))}), {"0": f32})
    # A stride-0 view: 32 × 100,000 elements from a 1-element storage (gigabytes once expanded).
    archive("stride0.bin", dumps({w: Tensor(Storage("0", 1), (32, 100000), (0, 0))}), {"0": f32[:4]})
    # A view reaching past the end of its storage.
    archive("view-past-storage.bin", dumps({w: Tensor(Storage("0", 32), (32,), (2,))}), {"0": f32})
    # A storage that is missing from the archive.
    archive("missing-storage.bin", dumps({w: Tensor(Storage("7", 32), (32,), (1,))}), {"0": f32})
    # A storage file shorter than its element count.
    archive("short-storage.bin", dumps({w: Tensor(ok, (32,), (1,))}), {"0": f32[:64]})
    # The top level is a list, not a dict of tensors.
    archive("not-a-dict.bin", dumps([Tensor(ok, (32,), (1,))]), {"0": f32})
    # A memo lookup of a key never stored.
    archive("memo-undefined.bin", b"\x80\x02h\x05.")
    # Lists chained by appending into a list after it was nested (a chain 60,000 deep whose
    # recorded depth would stay 1): EMPTY_LIST BINPUT 0, then repeatedly: EMPTY_LIST, BINPUT k,
    # BINGET k-1, BINGET k, APPEND (append list k into list k-1, already nested in k-2); the lists
    # stay on the stack.
    chain = bytearray(b"\x80\x02]q\x00")
    for k in range(1, 250):
        chain += b"]q" + bytes([k]) + b"h" + bytes([k - 1]) + b"h" + bytes([k]) + b"a"
    chain += b"h\x00."
    archive("chained-lists.bin", bytes(chain))
    # An integer of 9 bytes (LONG1) where a size is expected.
    archive("long-size.bin", b"\x80\x02\x8a\x09" + b"\xff" * 9 + b".")
    # Entries deflate-compressed (torch.save stores them).
    archive("compressed-entry.bin", dumps({w: Tensor(ok, (32,), (1,))}), {"0": f32}, compress=True)
    # The archive cut in the middle (no end-of-central-directory record).
    archive("truncated.bin", dumps({w: Tensor(ok, (32,), (1,))}), {"0": f32}, truncate=120)
    # Not a zip at all: a pre-1.6 torch.save (raw pickle).
    (OUT / "legacy.bin").write_bytes(b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.")
    print("wrote", ", ".join(sorted(p.name for p in OUT.iterdir())))


if __name__ == "__main__":
    main()
