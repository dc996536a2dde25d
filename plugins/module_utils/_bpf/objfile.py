"""BPF ELF object -> ``ObjectSpec``: a path or bytes in, programs, maps, license and BTF out.

The file is untrusted input: only a regular file is read (opened with O_NONBLOCK and checked with fstat
on the open fd, so a FIFO or a device never blocks or streams forever), at most ``MAX_OBJECT_BYTES``;
every program and map name is checked (``pinnames.check_object_name``) before anything is built from it,
and section names must be printable. Each error names the file and the field.

Pure and deterministic (no kernel access), following libbpf's conventions:
- every global STT_FUNC in an executable section (other than ``.text``) is a program; several may share
  a section; the section name gives the program type (``SECTION_TYPES``); the ``.text`` functions a
  program reaches (a ``bpf_loop`` callback's address, a bpf-to-bpf call) are appended to it (``subprogs``);
- BTF-defined maps from ``.maps`` (their parameters are encoded in BTF types, see ``_map_spec``);
- ``R_BPF_64_64`` relocations of map loads become ``(insn index, map name)``; relocations into ``.text``
  are references to subprograms; any other relocation in a program section is an error naming the
  section and offset; relocations elsewhere are ignored;
- ``.BTF`` is returned with DATASEC sizes/offsets fixed up (clang leaves them 0) and ``.BTF.ext``
  func/line info is split per program with instruction offsets made program-relative;
  ``ProgramSpec.source_at(insn)`` reads the line info back as ``file:line:col`` and the source line.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import struct
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple, Union

from . import btf as btfmod
from . import subprogs
from . import syscalls as sc
from . import tag as tagmod
from .errors import ObjectFileError, UnsafeNameError
from .pinnames import check_object_name, check_text, printable

try:
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    from elftools.elf.relocation import RelocationSection
    from elftools.elf.sections import SymbolTableSection
    HAS_PYELFTOOLS, PYELFTOOLS_IMPORT_ERROR = True, ""
except ImportError as exc:  # reported by the caller (module: missing_required_lib)
    HAS_PYELFTOOLS, PYELFTOOLS_IMPORT_ERROR = False, str(exc)

EM_BPF = 247
R_BPF_64_64, R_BPF_64_32 = 1, 10
INSN_SIZE = 8
MAX_OBJECT_BYTES = 64 << 20  # far above any BPF object (the seed is 6 KiB, clang -g objects a few 100 KiB)

# (section pattern, prog type, expected attach type, prog flags); first match wins.
SECTION_TYPES = (
    (r"xdp(\.frags)?/devmap", sc.PROG_TYPE_XDP, 33),
    (r"xdp(\.frags)?/cpumap", sc.PROG_TYPE_XDP, 35),
    (r"xdp(\.frags)?(/.*)?", sc.PROG_TYPE_XDP, sc.ATTACH_XDP),
    (r"(tc|classifier)(/.*)?", sc.PROG_TYPE_SCHED_CLS, 0),
)
PINNING = (0, 1)  # LIBBPF_PIN_NONE, LIBBPF_PIN_BY_NAME
MAP_INT_FIELDS = ("type", "max_entries", "map_flags", "numa_node", "key_size", "value_size", "pinning")


@dataclass
class ExtInfo:
    """func_info or line_info records of one program (insn_off already program-relative)."""

    rec_size: int = 0
    data: bytes = b""

    @property
    def count(self) -> int:
        return len(self.data) // self.rec_size if self.rec_size else 0

    def records(self):
        """Each record's bytes, in order."""
        size = self.rec_size
        return [self.data[i * size:(i + 1) * size] for i in range(self.count)]


@dataclass(frozen=True)
class SourceLine:
    """Where an instruction came from, by line_info: file, line, column and the line's text."""

    insn: int
    file: str
    line: int
    col: int
    text: str

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}:{self.col}" if self.col else f"{self.file}:{self.line}"


@dataclass
class ProgramSpec:
    name: str
    section: str
    insns: bytes
    prog_type: int
    expected_attach_type: int
    prog_flags: int
    relocations: List[Tuple[int, str]] = field(default_factory=list)  # (insn slot index, map name)
    func_info: ExtInfo = field(default_factory=ExtInfo)
    line_info: ExtInfo = field(default_factory=ExtInfo)
    license: str = ""
    btf_strings: bytes = field(default=b"", repr=False)  # the .BTF string table line_info points into

    def source_at(self, insn: int) -> Optional[SourceLine]:
        """The source line of instruction ``insn``: the last line_info record at or before it (None
        without line info). File names and text are shown as printable text."""
        found = None
        for rec in self.line_info.records():
            off, file_off, line_off, line_col = struct.unpack_from("<IIII", rec)
            if off > insn:
                break
            found = (off, file_off, line_off, line_col)
        if found is None:
            return None
        off, file_off, line_off, line_col = found
        return SourceLine(off, printable(_cstring(self.btf_strings, file_off)) or "<unknown file>", line_col >> 10,
                          line_col & 0x3FF, printable(_cstring(self.btf_strings, line_off).strip()))

    @property
    def slots(self) -> int:
        return len(self.insns) // INSN_SIZE

    def tags(self) -> set:
        """Tags the kernel may report once this program is loaded (see ``tag.tags``)."""
        return tagmod.tags(self.insns, [index for index, _name in self.relocations])

    @property
    def map_names(self) -> List[str]:
        """Maps used, in first-use order (the kernel's ``map_ids`` order)."""
        return list(dict.fromkeys(name for _index, name in sorted(self.relocations)))


@dataclass
class MapSpec:
    name: str
    type: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int = 0
    pinning: int = 0
    numa_node: int = 0
    btf_key_type_id: int = 0
    btf_value_type_id: int = 0


@dataclass
class ObjectSpec:
    source: str
    license: str
    programs: List[ProgramSpec]
    maps: List[MapSpec]
    btf: Optional[bytes] = None               # fixed-up, ready for BPF_BTF_LOAD
    types: Optional[btfmod.Btf] = field(default=None, repr=False)
    sha256: str = ""                          # of the file's bytes (which content a plan was made from)

    def program(self, name: str) -> ProgramSpec:
        return _by_name(self.programs, name, "program", self.source)

    def map(self, name: str) -> MapSpec:
        return _by_name(self.maps, name, "map", self.source)


def _by_name(items, name, what, source):
    for item in items:
        if item.name == name:
            return item
    known = ", ".join(i.name for i in items) or "none"
    raise KeyError(f"{source}: no {what} named {name!r} (known: {known})")


def _cstring(table: bytes, off: int) -> str:
    """The NUL-terminated string at ``off`` in ``table`` ("" outside it), decoded leniently: only shown."""
    if off >= len(table):
        return ""
    end = table.find(b"\0", off)
    return table[off:end if end >= 0 else len(table)].decode(errors="replace")


def section_type(section: str) -> Optional[Tuple[int, int, int]]:
    """(prog type, expected attach type, prog flags) for a program section name, or None."""
    for pattern, prog_type, attach in SECTION_TYPES:
        if re.fullmatch(pattern, section):
            frags = sc.F_XDP_HAS_FRAGS if section.startswith("xdp.frags") else 0
            return prog_type, attach, frags
    return None


# What pyelftools, struct and index arithmetic raise on a truncated or corrupted object (BTF decoding
# raises only BtfError, our own checks ObjectFileError).
_MALFORMED = (ELFError, struct.error, btfmod.BtfError, ValueError, IndexError, KeyError,
              OverflowError) if HAS_PYELFTOOLS else ()


_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
               (stat.S_ISSOCK, "a socket"))


def _not_regular(mode: int) -> Optional[str]:
    """Why a file of ``mode`` is not read as an object (None for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")
    return f"is {kind}, not a regular file: an object must be a regular file"


def read_file(source: str, limit: int = MAX_OBJECT_BYTES) -> bytes:
    """The bytes of regular file ``source`` (at most ``limit``); ObjectFileError otherwise.

    A path that already shows a FIFO, a device or a directory is refused before it is opened (opening a
    device can have effects); the open uses O_NONBLOCK (a FIFO swapped in meanwhile never blocks) and the
    open fd is what fstat checks, so what is read is what was checked.
    """
    def fail(message: str):
        raise ObjectFileError(source, message)

    if "\0" in source:
        raise ObjectFileError(repr(source), "the path contains a NUL character")
    try:
        early = _not_regular(os.stat(source).st_mode)
        if early:
            fail(early)
        fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        fail(f"cannot read the object file: {exc.strerror}")
    try:
        st = os.fstat(fd)
        problem = _not_regular(st.st_mode)
        if problem:
            fail(problem)
        if st.st_size > limit:
            fail(f"is {st.st_size} bytes; object files larger than {limit} bytes are refused")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            fail(f"grew past {limit} bytes while being read; object files larger than that are refused")
        return b"".join(chunks)
    except OSError as exc:
        fail(f"cannot read the object file: {exc.strerror}")
    finally:
        os.close(fd)


def read_object(obj: Union[str, bytes, os.PathLike]) -> ObjectSpec:
    """Parse a BPF ELF object (a path or its bytes); raises ObjectFileError (naming the file) when it
    cannot be read (not a regular file, larger than ``MAX_OBJECT_BYTES``), is malformed (truncated,
    corrupted), has a name that is unsafe or not a kernel object name, or uses something this loader
    does not support."""
    if isinstance(obj, (bytes, bytearray)):
        data, source = bytes(obj), "<bytes>"
        if len(data) > MAX_OBJECT_BYTES:
            raise ObjectFileError(source, f"{len(data)} bytes; objects larger than {MAX_OBJECT_BYTES} bytes are refused")
    else:
        source = os.fspath(obj)
        data = read_file(source)
    if not HAS_PYELFTOOLS:
        raise ObjectFileError(source, f"pyelftools is required: {PYELFTOOLS_IMPORT_ERROR}")
    try:
        spec = _Reader(source, ELFFile(io.BytesIO(data))).read()
        spec.sha256 = hashlib.sha256(data).hexdigest()
        return spec
    except ObjectFileError:
        raise
    except UnsafeNameError as exc:
        raise ObjectFileError(source, str(exc)) from None
    except _MALFORMED as exc:
        # pyelftools reports corrupted headers, tables and offsets with whatever error it hits first.
        raise ObjectFileError(source, f"malformed object ({type(exc).__name__}: {exc})") from None


class _Reader:
    def __init__(self, source: str, elf):
        self.source = source
        self.elf = elf
        self.sections = list(elf.iter_sections())
        symtab = elf.get_section_by_name(".symtab")
        if symtab is not None and not isinstance(symtab, SymbolTableSection):
            self.fail("'.symtab' is not a symbol table")
        self.symbols = list(symtab.iter_symbols()) if symtab is not None else []
        for section in self.sections[1:]:
            if section.name:
                check_text(section.name, "section name")
        self.maps_index = next((i for i, s in enumerate(self.sections) if s.name == ".maps"), None)
        self.text_index = next((i for i, s in enumerate(self.sections) if s.name == ".text"), None)
        self.text: Optional[subprogs.Text] = None
        self.text_refs: Dict[str, List[subprogs.Ref]] = {}  # program name -> its references into .text

    def fail(self, message: str):
        raise ObjectFileError(self.source, message)

    def read(self) -> ObjectSpec:
        if self.elf["e_machine"] not in ("EM_BPF", EM_BPF):
            self.fail(f"not a BPF object (machine {self.elf['e_machine']})")
        if not self.elf.little_endian:
            self.fail("big-endian BPF objects are not supported")
        if self.elf.get_section_by_name("maps") is not None:
            self.fail("legacy 'maps' section (struct bpf_map_def) is not supported; "
                      "declare maps in SEC(\".maps\") with BTF (__uint/__type)")
        types = self._btf()
        maps = self._maps(types)
        license = self._license()
        programs = self._programs(license)
        if types is not None:
            self._attach_ext_info(programs, types)
        for prog in programs:
            subprogs.link(prog, self.text_refs.get(prog.name, []), self.text)
        btf = types.fixup_datasecs(self._section_sizes(), self._symbol_offsets()) if types else None
        return ObjectSpec(self.source, license, programs, maps, btf, types)

    # -- sections and symbols -------------------------------------------------------------------

    def _data(self, name: str) -> Optional[bytes]:
        section = self.elf.get_section_by_name(name)
        return None if section is None else section.data()

    def _section_sizes(self) -> Dict[str, int]:
        return {s.name: s["sh_size"] for s in self.sections}

    def _symbol_offsets(self) -> Dict[str, int]:
        return {s.name: s["st_value"] for s in self.symbols if s["st_info"]["type"] == "STT_OBJECT"}

    def _license(self) -> str:
        data = self._data("license")
        return data.split(b"\0", 1)[0].decode(errors="replace") if data else ""

    def _btf(self) -> Optional[btfmod.Btf]:
        data = self._data(".BTF")
        return btfmod.Btf.parse(data) if data else None

    # -- maps -----------------------------------------------------------------------------------

    def _maps(self, types: Optional[btfmod.Btf]) -> List[MapSpec]:
        index = self.maps_index
        if index is None:
            return []
        if types is None:
            self.fail("'.maps' needs BTF, but the object has no .BTF section (compile with -g)")
        relocated = [s for s in self.sections if isinstance(s, RelocationSection) and s["sh_info"] == index]
        if any(r.num_relocations() for r in relocated):
            self.fail("'.maps' has relocations (declarative prog-array '.values' initialisation is not "
                      "supported; fill the jump table with xdp_prog_array)")
        datasec = types.find(btfmod.DATASEC, ".maps")
        if datasec is None:
            self.fail("'.maps' has no DATASEC in BTF")
        symbols = sorted((s["st_value"], check_object_name(s.name, "map name"))
                         for s in self.symbols if s["st_shndx"] == index and s["st_info"]["type"] == "STT_OBJECT")
        specs = {}
        for member in datasec.members:
            var = types.type(member.type)
            if var.kind != btfmod.VAR:
                self.fail(f"'.maps' DATASEC entry {member.type} is not a variable")
            check_object_name(var.name, "map name (BTF)")
            if var.extra[0] == 0:  # BTF_VAR_STATIC
                self.fail(f"map {var.name!r}: static maps are not supported (make it global)")
            specs[var.name] = self._map_spec(var.name, types, var.size_or_type)
        missing = [name for _offset, name in symbols if name not in specs]
        if missing:
            self.fail(f"'.maps' symbols without BTF: {', '.join(missing)}")
        return [specs[name] for _offset, name in symbols]

    def _map_spec(self, name: str, types: btfmod.Btf, type_id: int) -> MapSpec:
        """Decode libbpf's encoding: __uint(f, N) is PTR -> ARRAY[N]; __type(f, T) is PTR -> T."""
        struct_type = types.skip_modifiers(type_id)
        if struct_type.kind != btfmod.STRUCT:
            self.fail(f"map {name!r}: definition is not a struct")
        fields: Dict[str, int] = {}
        key_type = value_type = 0
        for m in struct_type.members:
            t = types.skip_modifiers(m.type)
            if m.name in MAP_INT_FIELDS:
                target = types.skip_modifiers(t.size_or_type) if t.kind == btfmod.PTR else None
                if target is None or target.kind != btfmod.ARRAY:
                    self.fail(f"map {name!r}: field {m.name!r} must be declared with __uint()")
                fields[m.name] = target.extra[2]
            elif m.name in ("key", "value"):
                if t.kind != btfmod.PTR:
                    self.fail(f"map {name!r}: field {m.name!r} must be declared with __type()")
                fields[m.name + "_size"] = self._checked_size(name, m.name, types, t.size_or_type, fields)
                if m.name == "key":
                    key_type = t.size_or_type
                else:
                    value_type = t.size_or_type
            elif m.name == "values":
                if t.kind != btfmod.ARRAY or types.skip_modifiers(
                        types.skip_modifiers(t.extra[0]).size_or_type).kind != btfmod.FUNC_PROTO:
                    self.fail(f"map {name!r}: map-in-map '.values' is not supported")
                fields.setdefault("value_size", 4)
            else:
                self.fail(f"map {name!r}: unsupported map field {m.name!r}")
        self._kind_defaults(name, fields)
        for required in ("type", "key_size", "value_size", "max_entries"):
            if required not in fields:
                self.fail(f"map {name!r}: missing {required!r}")
        if fields.get("pinning", 0) not in PINNING:
            self.fail(f"map {name!r}: pinning {fields['pinning']} is not supported (0: none, 1: by name; "
                      "every map is pinned by name under the map pin path anyway)")
        return MapSpec(name, fields["type"], fields["key_size"], fields["value_size"], fields["max_entries"],
                       fields.get("map_flags", 0), fields.get("pinning", 0), fields.get("numa_node", 0),
                       key_type, value_type)

    def _kind_defaults(self, name: str, fields: Dict[str, int]) -> None:
        """What libbpf fills in for map kinds that need no key or value (a ring buffer is sized by
        max_entries alone; a perf event array holds one 4-byte fd per CPU, max_entries 0 meaning
        every possible CPU, which ``Map.create`` resolves on the host)."""
        kind = fields.get("type")
        if kind in (sc.MAP_TYPE_RINGBUF, sc.MAP_TYPE_USER_RINGBUF):
            for size in ("key_size", "value_size"):
                if fields.setdefault(size, 0):
                    self.fail(f"map {name!r}: a ring buffer has no {size[:-5]}; {size} must be 0, not "
                              f"{fields[size]}")
        elif kind == sc.MAP_TYPE_PERF_EVENT_ARRAY:
            fields.setdefault("key_size", 4)
            fields.setdefault("value_size", 4)
            fields.setdefault("max_entries", 0)

    def _checked_size(self, name, field_name, types, type_id, fields) -> int:
        size = types.size(type_id)
        declared = fields.get(field_name + "_size")
        if declared is not None and declared != size:
            self.fail(f"map {name!r}: {field_name}_size {declared} differs from the {field_name} type's "
                      f"size {size}")
        return size

    # -- programs -------------------------------------------------------------------------------

    def _programs(self, license: str) -> List[ProgramSpec]:
        map_at = {s["st_value"]: s.name for s in self.symbols
                  if self.maps_index is not None and s["st_shndx"] == self.maps_index
                  and s["st_info"]["type"] == "STT_OBJECT"}
        programs = []
        for index, section in enumerate(self.sections):
            if not (section["sh_type"] == "SHT_PROGBITS" and section["sh_flags"] & 0x4):  # SHF_EXECINSTR
                continue
            funcs = sorted((s for s in self.symbols if s["st_shndx"] == index
                            and s["st_info"]["type"] == "STT_FUNC"), key=lambda s: s["st_value"])
            for func in funcs:
                check_object_name(func.name, "program name")
            if section.name == ".text":
                self.text = self._text(index, section, funcs, map_at)
                continue
            kind = section_type(section.name)
            if kind is None:
                self.fail(f"section {section.name!r}: unknown program type (use 'xdp', 'xdp.frags', "
                          f"'xdp/...', 'tc', 'classifier' or 'tc/...')")
            if not funcs:
                self.fail(f"section {section.name!r}: no function symbol")
            relocs, refs = self._relocations(index, section, map_at)
            data = section.data()
            for func in funcs:
                programs.append(self._program(func, section, data, kind, relocs, license))
                start, end = func["st_value"], func["st_value"] + func["st_size"]
                self.text_refs[func.name] = [subprogs.Ref((off - start) // INSN_SIZE, target)
                                             for off, target in refs if start <= off < end]
        if not programs:
            self.fail("no programs found")
        names = [p.name for p in programs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            self.fail(f"duplicate program names: {', '.join(duplicates)}")
        return programs

    def _program(self, func, section, data, kind, relocs, license) -> ProgramSpec:
        start, size = func["st_value"], func["st_size"]
        if func["st_info"]["bind"] == "STB_LOCAL":
            self.fail(f"program {func.name!r} in {section.name!r} is static; programs must be global")
        if start % INSN_SIZE or size % INSN_SIZE or not size or start + size > len(data):
            self.fail(f"program {func.name!r} in {section.name!r}: bad bounds {start}+{size}")
        insns = data[start:start + size]
        own = [((off - start) // INSN_SIZE, name) for off, name in relocs if start <= off < start + size]
        return ProgramSpec(func.name, section.name, insns, kind[0], kind[1], kind[2], own, license=license)

    def _text(self, index: int, section, funcs, map_at: Dict[int, str]) -> subprogs.Text:
        relocs, refs = self._relocations(index, section, map_at)
        return subprogs.Text(self.source, section.data(),
                             [subprogs.TextFunc(f.name, f["st_value"], f["st_size"]) for f in funcs],
                             relocs, [subprogs.Ref(off // INSN_SIZE, target) for off, target in refs])

    def _relocations(self, index: int, section, map_at: Dict[int, str]):
        """([(byte offset in section, map name)], [(byte offset in section, byte offset in .text)]): the
        map loads and the references to .text subprograms of section ``index``."""
        result, refs = [], []
        data = section.data()
        for rel in self.sections:
            if not isinstance(rel, RelocationSection) or rel["sh_info"] != index:
                continue
            if rel.is_RELA():
                self.fail(f"section {section.name!r}: RELA relocations are not supported")
            for r in rel.iter_relocations():
                off, rtype = r["r_offset"], r["r_info_type"]
                where = f"section {section.name!r} offset {off:#x}"
                if r["r_info_sym"] >= len(self.symbols):
                    self.fail(f"{where}: relocation names symbol {r['r_info_sym']}, the symbol table has "
                              f"{len(self.symbols)}")
                sym = self.symbols[r["r_info_sym"]]
                if self.text_index is not None and sym["st_shndx"] == self.text_index:
                    refs.append((off, self._text_target(where, data, off, rtype, sym)))
                    continue
                if rtype != R_BPF_64_64:
                    self.fail(f"{where}: unsupported relocation type {rtype} against {sym.name!r} "
                              "(only map loads, R_BPF_64_64, are supported)")
                if off % INSN_SIZE or off + 16 > len(data) or data[off] != tagmod.LD_IMM64:
                    self.fail(f"{where}: relocation does not point at an ld_imm64 instruction")
                target = sym["st_value"]
                if sym["st_info"]["type"] == "STT_SECTION":
                    target += struct.unpack_from("<i", data, off + 4)[0]
                name = map_at.get(target) if sym["st_shndx"] == self.maps_index else None
                if name is None:
                    if not isinstance(sym["st_shndx"], int) or sym["st_shndx"] >= len(self.sections):
                        self.fail(f"{where}: reference to {sym.name!r}, which is not defined in the object "
                                  "(extern variables, kconfig and ksyms are not supported)")
                    what = self.sections[sym["st_shndx"]].name
                    self.fail(f"{where}: reference to {sym.name or what!r} in {what!r} is not a map "
                              "(global variables in .data/.rodata/.bss are not supported)")
                result.append((off, name))
        return result, refs

    def _text_target(self, where: str, data: bytes, off: int, rtype: int, sym) -> int:
        """The byte offset in .text a subprogram reference points at (libbpf's arithmetic)."""
        if off % INSN_SIZE or off + INSN_SIZE > len(data):
            self.fail(f"{where}: relocation against '.text' does not point at an instruction")
        imm = struct.unpack_from("<i", data, off + 4)[0]
        if rtype == R_BPF_64_64 and data[off] == tagmod.LD_IMM64:
            return sym["st_value"] + imm
        if rtype == R_BPF_64_32 and data[off] == subprogs.CALL:
            return sym["st_value"] + (imm + 1) * INSN_SIZE
        self.fail(f"{where}: relocation type {rtype} against '.text' is neither a subprogram address "
                  "(ld_imm64) nor a call")

    # -- .BTF.ext -------------------------------------------------------------------------------

    def _attach_ext_info(self, programs: List[ProgramSpec], types: btfmod.Btf) -> None:
        data = self._data(".BTF.ext")
        if not data:
            return
        funcs, lines = btfmod.parse_ext(data, types)
        if self.text is not None:
            self.text.func_info, self.text.line_info = funcs.get(".text"), lines.get(".text")
        by_section: Dict[str, List[ProgramSpec]] = {}
        for p in programs:
            by_section.setdefault(p.section, []).append(p)
        for section, progs in by_section.items():
            bounds = self._bounds(section, progs)
            for prog, (start, end) in zip(progs, bounds):
                prog.func_info = _slice(funcs.get(section), start, end)
                prog.line_info = _slice(lines.get(section), start, end)
                prog.btf_strings = types.strings

    def _bounds(self, section: str, progs: List[ProgramSpec]) -> List[Tuple[int, int]]:
        index = next(i for i, s in enumerate(self.sections) if s.name == section)
        starts = {s.name: s["st_value"] for s in self.symbols
                  if s["st_shndx"] == index and s["st_info"]["type"] == "STT_FUNC"}
        return [(starts[p.name], starts[p.name] + len(p.insns)) for p in progs]


def _slice(ext: Optional[btfmod.ExtSection], start: int, end: int) -> ExtInfo:
    """Records of ``ext`` within [start, end) bytes, insn_off rewritten to instruction slots."""
    if ext is None:
        return ExtInfo()
    out = bytearray()
    for rec in ext.records:
        off = struct.unpack_from("<I", rec, 0)[0]
        if start <= off < end:
            out += struct.pack("<I", (off - start) // INSN_SIZE) + rec[4:]
    return ExtInfo(ext.rec_size, bytes(out)) if out else ExtInfo()
