"""The checking stage's table: programs the verifier refuses, where the compiler must say so, and
their near misses that load.

In: nothing. Out: ``CASES``, one ``Case`` per rule of ``compiler/check`` (and every confirmed case
of issue 10): the program, the line and column of the expected error, a fragment of its message,
a fragment of what the kernel's verifier says when the program is compiled without the checking
stage (None for the stage's own stricter rules, ``check.diag.LANGUAGE_RULES``), and the fixed
program, which must compile and load. ``tests/unit/compiler/test_check_rules.py`` checks the
errors; ``tests/kernel/compiler/test_checker_rules.py`` checks the verifier's verdicts on both.
"""

from __future__ import annotations

from dataclasses import dataclass

MAPS = """(defmap h :type :hash :key-size 4 :value-size 8 :max-entries 16)
(defmap wide :type :hash :key-size 16 :value-size 8 :max-entries 16)
(defmap arr :type :array :key-size 4 :value-size 8 :max-entries 4)
(defmap rb :type :ringbuf :max-entries 4096)
(defmap jt :type :prog-array :key-size 4 :value-size 4 :max-entries 4)
"""
PRELUDE_LINES = MAPS.count("\n")


@dataclass(frozen=True)
class Case:
    id: str
    body: str  # the program body; the program starts on line PRELUDE_LINES + 1
    line: int  # of the error, counted in ``body`` (1 = its first line)
    col: int
    message: str  # a fragment of the compile error
    fixed: str  # the near miss that loads
    verifier: str | None  # a fragment of the verifier's refusal without the stage (None: a language rule)
    prog_type: str = "xdp"

    def source(self, body: str | None = None) -> str:
        options = "" if self.prog_type == "xdp" else ":type :tc"
        return f"{MAPS}(defprog p ({options})\n{body if body is not None else self.body}\n  0)\n"


def case(id, body, line, col, message, fixed, verifier, prog_type="xdp"):
    return Case(id, body, line, col, message, fixed, verifier, prog_type)


CASES = [
    # -- the confirmed cases of issue 10 ---------------------------------------------------------
    case("stack read past a struct-alloc",
         "  (let ((s (struct-alloc 4))) (store u32 s 0 5) (setf (getmap h 0) (load u32 s 4)))",
         1, 68, "reads bytes 4..7 of the 4-byte stack buffer",
         "  (let ((s (struct-alloc 4))) (store u32 s 0 5) (setf (getmap h 0) (load u32 s 0)))",
         None),  # the kernel refused it when 4-byte slots were 4-aligned; now it reads the padding
    case("misaligned stack store",
         "  (let ((s (struct-alloc 8))) (store u16 s 1 5) (setf (getmap h 0) (load u64 s 0)))",
         1, 31, "not a multiple of 2",
         "  (let ((s (struct-alloc 8))) (store u16 s 2 5) (setf (getmap h 0) (load u64 s 0)))",
         "misaligned stack access"),
    case("a number as a 16-byte key",
         "  (incf (getmap wide 5))",
         1, 3, "this map takes its key by pointer",
         "  (let ((k (struct-alloc 16))) (store u32 k 0 5) (incf (getmap wide k)))",
         "type=scalar expected=fp"),
    case("a packet pointer as a key value",
         "  (incf (getmap h (xdp-data)))",
         1, 3, "stores a packet pointer in 4 bytes",
         "  (with-packet (data data-end :min-len 4) (incf (getmap h (load u32 data 0))))",
         "invalid size of register spill"),
    case("a read past :min-len",
         "  (with-packet (data data-end :min-len 14)\n    (setf (getmap h 0) (load u32 data 20)))",
         2, 24, "reads bytes 20..23 of the packet, but only 14 are checked (line 7)",
         "  (with-packet (data data-end :min-len 24)\n    (setf (getmap h 0) (load u32 data 20)))",
         "outside of the packet"),
    case("a constant used as a pointer",
         "  (setf (getmap h 0) (eth-type 5))",
         1, 22, "reads through the number 5, which is not a pointer",
         "  (with-eth (data data-end) (setf (getmap h 0) (eth-type data)))",
         "invalid mem access 'scalar'"),
    case("a map lookup dereferenced without a null check",
         "  (setf (getmap arr 0) (load u64 (map-lookup h 1) 0))",
         1, 24, "may be null",
         "  (let ((v (map-lookup h 1))) (when v (setf (getmap arr 0) (load u64 v 0))))",
         "map_value_or_null"),
    case("probe-read-kernel into more stack than exists",
         "  (let ((s (struct-alloc 8))) (probe-read-kernel s 64 0) (setf (getmap h 0) (load u64 s 0)))",
         1, 31, "64 bytes from offset 0 of the 8-byte stack buffer",
         "  (let ((s (struct-alloc 8))) (probe-read-kernel s 8 0) (setf (getmap h 0) (load u64 s 0)))",
         None),
    case("multiplying a packet pointer",
         "  (with-packet (data data-end :min-len 14) (setf (getmap h 0) (load u32 (* data 2) 0)))",
         1, 73, "uses (* ...) on a packet pointer",
         "  (with-packet (data data-end :min-len 14) (setf (getmap h 0) (load u32 (+ data 2) 0)))",
         "pointer arithmetic with *= operator prohibited"),
    # -- pointer arithmetic ------------------------------------------------------------------------
    case("adding two pointers",
         "  (with-packet (data data-end :min-len 14) (setf (getmap h 0) (+ data data-end)))",
         1, 63, "of two pointers",
         "  (with-packet (data data-end :min-len 14) (setf (getmap h 0) (- data-end data)))",
         "pointer += pointer prohibited"),
    case("moving data-end",
         "  (let ((data (xdp-data)) (end (xdp-data-end)))\n"
         "    (when (<= (+ data 14) (- end 2)) (setf (getmap h 0) (load u8 data 0))))",
         2, 27, "moves data-end",
         "  (let ((data (xdp-data)) (end (xdp-data-end)))\n"
         "    (when (<= (+ data 14) end) (setf (getmap h 0) (load u8 data 0))))",
         "pointer arithmetic on pkt_end prohibited"),
    case("moving a lookup result before its null check",
         "  (let ((v (+ (map-lookup h 1) 4))) (when v (setf (getmap h 0) (load u32 v 0))))",
         1, 12, "before comparing it with 0",
         "  (let ((v (map-lookup h 1))) (when v (setf (getmap h 0) (load u32 (+ v 4) 0))))",
         "null-check it first"),
    case("subtracting from a stack pointer",
         "  (let ((s (struct-alloc 16))) (store u64 (- (+ s 8) 8) 0 1) (setf (getmap h 0) (load u64 s 0)))",
         1, 43, "subtracts from a stack pointer",
         "  (let ((s (struct-alloc 16))) (store u64 (+ (+ s 8) -8) 0 1) (setf (getmap h 0) (load u64 s 0)))",
         "subtraction from stack pointer prohibited"),
    case("subtracting a pointer from a number",
         "  (with-packet (data data-end :min-len 14) (setf (getmap h 0) (- 100 data)))",
         1, 63, "subtracts a packet pointer from a number",
         "  (with-packet (data data-end :min-len 14) (setf (getmap h 0) (- data-end data)))",
         "tried to subtract pointer from scalar"),
    case("masking a pointer",
         "  (with-packet (data data-end :min-len 14) (setf (getmap h 0) (logand data 255)))",
         1, 63, "masks a packet pointer",
         "  (with-packet (data data-end :min-len 14) (setf (getmap h 0) (logand (load u8 data 0) 255)))",
         "32-bit pointer arithmetic prohibited"),
    case("cutting a pointer to 16 bits",
         "  (with-packet (data data-end :min-len 14) (setf (getmap h 0) (cast u16 data)))",
         1, 63, "casts to u16 a packet pointer",
         "  (with-packet (data data-end :min-len 14) (setf (getmap h 0) (cast u16 (load u16 data 0))))",
         "32-bit pointer arithmetic prohibited"),
    case("an unbounded offset added to a pointer",
         "  (with-packet (data data-end :min-len 14)\n"
         "    (let ((p (+ data (/ (getmap h 0) 3)))) (when (<= (+ p 1) data-end) (setf (getmap h 1) (load u8 p 0)))))",
         2, 14, "adds a number with no lower bound",
         "  (with-packet (data data-end :min-len 14)\n"
         "    (let ((p (+ data (logand (getmap h 0) 255)))) (when (<= (+ p 1) data-end) (setf (getmap h 1) (load u8 p 0)))))",
         "unbounded min value is not allowed"),
    # -- packets -----------------------------------------------------------------------------------
    case("a variable packet offset read without a check",
         "  (with-packet (data data-end :min-len 14)\n"
         "    (let ((p (+ data (load u8 data 0)))) (setf (getmap h 0) (load u8 p 0))))",
         2, 61, "past a variable offset (0..255) into the packet, but no comparison with data-end covers them",
         "  (with-packet (data data-end :min-len 14)\n"
         "    (let ((p (+ data (load u8 data 0)))) (when (<= (+ p 1) data-end) (setf (getmap h 0) (load u8 p 0)))))",
         "outside of the packet"),
    case("a check on the failing side",
         "  (let ((data (xdp-data)))\n"
         "    (if (> (+ data 14) (xdp-data-end)) (setf (getmap h 0) (load u8 data 0)) 0))",
         2, 59, "no comparison with data-end covers them",
         "  (let ((data (xdp-data)))\n"
         "    (if (> (+ data 14) (xdp-data-end)) 0 (setf (getmap h 0) (load u8 data 0))))",
         "outside of the packet"),
    case("an equality test proves nothing",
         "  (let ((data (xdp-data)))\n"
         "    (when (= (+ data 14) (xdp-data-end)) (setf (getmap h 0) (load u8 data 0))))",
         2, 61, "no comparison with data-end covers them",
         "  (let ((data (xdp-data)))\n"
         "    (when (<= (+ data 14) (xdp-data-end)) (setf (getmap h 0) (load u8 data 0))))",
         "outside of the packet"),
    case("a packet pointer after xdp-adjust-head",
         "  (with-packet (data data-end :min-len 14)\n"
         "    (xdp-adjust-head (ctx-ptr) 0)\n"
         "    (setf (getmap h 0) (load u8 data 0)))",
         3, 24, "invalidated",
         "  (with-packet (data data-end :min-len 14)\n"
         "    (xdp-adjust-head (ctx-ptr) 0))\n"
         "  (with-packet (data data-end :min-len 14) (setf (getmap h 0) (load u8 data 0)))",
         "invalid mem access 'scalar'"),
    case("a negative variable packet offset",
         "  (with-packet (data data-end :min-len 14)\n"
         "    (let ((p (+ data (- (load u8 data 0) 10)))) (when (<= (+ p 1) data-end) (setf (getmap h 0) (load u8 p 0)))))",
         2, 96, "may be negative",
         "  (with-packet (data data-end :min-len 14)\n"
         "    (let ((p (+ data (load u8 data 0)))) (when (<= (+ p 1) data-end) (setf (getmap h 0) (load u8 p 0)))))",
         "min value is negative"),
    case("a metadata read past its check",
         "  (let ((meta (ctx data-meta)) (data (xdp-data)))\n"
         "    (when (<= (+ meta 4) data) (setf (getmap h 0) (load u32 meta 4))))",
         2, 51, "reads bytes 4..7 of the packet metadata, but only 4 are checked",
         "  (let ((meta (ctx data-meta)) (data (xdp-data)))\n"
         "    (when (<= (+ meta 4) data) (setf (getmap h 0) (load u32 meta 0))))",
         "outside of the packet"),
    case("an atomic add into the packet",
         "  (with-packet (data data-end :min-len 14) (atomic-add data 0 1 u32))",
         1, 44, "atomic-add into a packet pointer",
         "  (let ((v (map-lookup h 0))) (when v (atomic-add v 0 1 u32)))",
         "BPF_ATOMIC stores into R"),
    case("a misaligned atomic add",
         "  (let ((v (map-lookup h 0))) (when v (atomic-add (+ v 4) 0 1)))",
         1, 39, "the verifier wants atomic operations aligned to their size",
         "  (let ((v (map-lookup h 0))) (when v (atomic-add v 0 1)))",
         "misaligned value access"),
    # -- the stack ---------------------------------------------------------------------------------
    case("a stored pointer read in part",
         "  (let ((s (struct-alloc 8))) (store u64 s 0 (xdp-data)) (setf (getmap h 0) (load u32 s 0)))",
         1, 77, "read back whole",
         "  (let ((s (struct-alloc 8))) (store u64 s 0 (xdp-data)) (setf (getmap h 0) (load u64 s 0)))",
         "invalid size of register fill"),
    # -- map values and ring buffer records ------------------------------------------------------
    case("a read past a map value",
         "  (let ((v (map-lookup h 1))) (when v (setf (getmap h 0) (load u64 v 4))))",
         1, 58, "reads bytes 4..11 of a value of map h, which has 8 bytes",
         "  (let ((v (map-lookup h 1))) (when v (setf (getmap h 0) (load u32 v 4))))",
         "invalid access to map value"),
    case("an unbounded index into a map value",
         "  (let ((v (map-lookup h 1))) (when v (setf (getmap h 0) (load u8 (+ v (load u8 v 0)) 0))))",
         1, 58, "bytes 0..255 of a value of map h",
         "  (let ((v (map-lookup h 1))) (when v (setf (getmap h 0) (load u8 (+ v (logand (load u8 v 0) 7)) 0))))",
         "invalid access to map value"),
    case("a record written past its size",
         "  (let ((r (ringbuf-reserve rb 8))) (when r (store u64 r 8 1) (ringbuf-submit r)))",
         1, 45, "writes bytes 8..15 of the ring buffer record, which has 8 bytes",
         "  (let ((r (ringbuf-reserve rb 8))) (when r (store u64 r 0 1) (ringbuf-submit r)))",
         "invalid access to memory"),
    case("a record submitted without a null check",
         "  (let ((r (ringbuf-reserve rb 8))) (ringbuf-submit r))",
         1, 37, "may be null",
         "  (let ((r (ringbuf-reserve rb 8))) (when r (ringbuf-submit r)))",
         "ringbuf_mem_or_null"),
    case("a record never submitted",
         "  (let ((r (ringbuf-reserve rb 8))) (when r (store u64 r 0 1)))",
         2, 3, "neither submitted nor discarded",
         "  (let ((r (ringbuf-reserve rb 8))) (when r (store u64 r 0 1) (ringbuf-discard r)))",
         "reference leak"),
    case("a tail call holding a record",
         "  (let ((r (ringbuf-reserve rb 8))) (when r (tail-call jt 0) (ringbuf-submit r)))",
         1, 45, "tail-call while the ring buffer record reserved is neither submitted",
         "  (let ((r (ringbuf-reserve rb 8))) (when r (ringbuf-submit r))) (tail-call jt 0)",
         "tail_call would lead to reference leak"),
    # -- helpers -----------------------------------------------------------------------------------
    case("a helper XDP programs cannot call",
         "  (skb-pull-data (ctx-ptr) 0)",
         1, 3, "skb-pull-data (helper 39) is not available to XDP programs",
         "  (xdp-adjust-tail (ctx-ptr) 0)",
         "program of this type cannot use helper"),
    case("a helper TC programs cannot call",
         "  (xdp-adjust-head (ctx-ptr) 0)",
         1, 3, "xdp-adjust-head (helper 44) is not available to TC programs",
         "  (skb-pull-data (ctx-ptr) 0)",
         "program of this type cannot use helper", prog_type="tc"),
    case("a number where a helper wants memory",
         "  (ringbuf-output rb 5 8 0)",
         1, 3, "it must point to memory",
         "  (let ((s (struct-alloc 8))) (ringbuf-output rb s 8 0))",
         "type=scalar expected=fp"),
    case("a helper reading past a map value",
         "  (let ((v (map-lookup h 1))) (when v (ringbuf-output rb v 16 0)))",
         1, 39, "reads bytes 0..15 of a value of map h, which has 8 bytes",
         "  (let ((v (map-lookup h 1))) (when v (ringbuf-output rb v 8 0)))",
         "invalid access to map value"),
    case("an unbounded helper size",
         "  (let ((s (struct-alloc 64))) (ringbuf-output rb s (getmap h 0) 0))",
         1, 32, "may be negative",
         "  (let ((s (struct-alloc 64))) (ringbuf-output rb s (logand (getmap h 0) 63) 0))",
         "min value is negative"),
    case("a moved context pointer passed to a helper",
         "  (xdp-adjust-head (+ (ctx-ptr) 4) 0)",
         1, 3, "context pointer moved by 4 bytes",
         "  (xdp-adjust-head (ctx-ptr) 0)",
         "dereference of modified ctx ptr"),
    case("a record submitted twice",
         "  (let ((r (ringbuf-reserve rb 8))) (when r (ringbuf-submit r) (ringbuf-submit r)))",
         1, 64, "must be a record from ringbuf-reserve",
         "  (let ((r (ringbuf-reserve rb 8))) (when r (ringbuf-submit r)))",
         "expected=ringbuf_mem"),
    case("a moved record submitted",
         "  (let ((r (ringbuf-reserve rb 8))) (when r (ringbuf-submit (+ r 4))))",
         1, 45, "moved record pointer",
         "  (let ((r (ringbuf-reserve rb 8))) (when r (ringbuf-submit r)))",
         "must have zero offset when passed to release func"),
    case("a number where a helper wants the context",
         "  (xdp-adjust-head 5 0)",
         1, 3, "must be the context pointer (ctx-ptr), got the number 5",
         "  (xdp-adjust-head (ctx-ptr) 0)",
         "type=scalar expected=ctx"),
    case("a zero size where a helper needs bytes",
         "  (let ((fmt (struct-alloc 8))) (store u64 fmt 0 #x0a6968) (trace-printk fmt (logand (getmap h 0) 4)))",
         1, 60, "is 0, which it does not accept",
         "  (let ((fmt (struct-alloc 8))) (store u64 fmt 0 #x0a6968) (trace-printk fmt 4))",
         "invalid zero-sized read"),
    case("a packet offset too large to check",
         "  (with-packet (data data-end :min-len 14)\n"
         "    (let ((p (+ data (load u32 data 0)))) (when (<= (+ p 1) data-end) (setf (getmap h 0) (load u8 p 0)))))",
         2, 90, "below 65536",
         "  (with-packet (data data-end :min-len 14)\n"
         "    (let ((p (+ data (load u8 data 0)))) (when (<= (+ p 1) data-end) (setf (getmap h 0) (load u8 p 0)))))",
         "outside of the packet"),
    case("a packet read before its start",
         "  (with-packet (data data-end :min-len 14) (setf (getmap h 0) (load u8 (+ data -1) 0)))",
         1, 63, "before the start of the packet",
         "  (with-packet (data data-end :min-len 14) (setf (getmap h 0) (load u8 (+ data 1) 0)))",
         "outside of the packet"),
    case("a stack read at an unchecked index",
         "  (with-packet (data data-end :min-len 14)\n"
         "    (let ((s (struct-alloc 16))) (setf (getmap h 0) (load u8 (+ s (load u8 data 0)) 0))))",
         2, 53, "of the 16-byte stack buffer",
         "  (with-packet (data data-end :min-len 14)\n"
         "    (let ((s (struct-alloc 16))) (setf (getmap h 0) (load u8 (+ s (logand (load u8 data 0) 15)) 0))))",
         "invalid variable-offset read from stack"),
    # -- the context -------------------------------------------------------------------------------
    case("a context field read in part",
         "  (setf (getmap h 0) (load u16 (ctx-ptr) 16))",
         1, 22, "is read whole (u32)",
         "  (setf (getmap h 0) (load u32 (ctx-ptr) 16))",
         "invalid bpf_context access"),
    case("a context read through a moved pointer",
         "  (setf (getmap h 0) (load u32 (+ (ctx-ptr) (logand (getmap h 1) 4)) 12))",
         1, 22, "only accepts the context pointer itself",
         "  (setf (getmap h 0) (load u32 (ctx-ptr) 16))",
         "variable ctx access"),
    case("a context store in XDP",
         "  (store u32 (ctx-ptr) 16 1)",
         1, 3, "which is read-only",
         "  (setf (getmap h 0) (load u32 (ctx-ptr) 16))",
         "invalid bpf_context access"),
    case("a context read past its fields",
         "  (setf (getmap h 0) (load u32 (ctx-ptr) 24))",
         1, 22, "past its fields",
         "  (setf (getmap h 0) (load u32 (ctx-ptr) 16))",
         "invalid bpf_context access"),
    # -- asm ---------------------------------------------------------------------------------------
    case("asm reading a scratch register",
         "  (setf (getmap h 0) (asm #x07 0 0 0 1))",
         1, 22, "reads a register",
         "  (setf (getmap h 0) (asm #xb7 0 0 0 1))",
         None),
    case("asm calling a helper with arguments",
         "  (setf (getmap h 0) (asm #x85 0 0 0 1))",
         1, 22, "asm calls map-lookup, which takes 2 argument(s)",
         "  (setf (getmap h 0) (asm #x85 0 0 0 5))",
         None),
    case("asm with reserved fields set",
         "  (setf (getmap h 0) (asm #xb7 0 0 1 42))",
         1, 22, "reserved fields",
         "  (setf (getmap h 0) (asm #xb7 0 0 0 42))",
         "BPF_MOV uses reserved fields"),
]
