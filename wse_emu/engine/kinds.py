"""Numbers the engine dispatches on. The instruction table (isa/instructions.toml) names a
semantics group (`sem`) and function (`fn`) per instruction; these are their codes."""

# fmt: off
SEM_NAMES = ("nop", "halt", "br", "call", "ret", "mov", "alu", "falu", "ld", "st",
             "dmem", "dfin", "dfout", "dlen", "vun", "vfill", "vbin", "vbins", "vfma", "vfmas",
             "vcvt", "vred", "send", "sendx", "recv", "activate", "block", "unblock", "switch",
             "ddim", "dinc", "async", "utblock", "utunblock", "sendctl")
(SEM_NOP, SEM_HALT, SEM_BR, SEM_CALL, SEM_RET, SEM_MOV, SEM_ALU, SEM_FALU, SEM_LD, SEM_ST,
 SEM_DMEM, SEM_DFIN, SEM_DFOUT, SEM_DLEN, SEM_VUN, SEM_VFILL, SEM_VBIN, SEM_VBINS, SEM_VFMA,
 SEM_VFMAS, SEM_VCVT, SEM_VRED, SEM_SEND, SEM_SENDX, SEM_RECV, SEM_ACTIVATE, SEM_BLOCK,
 SEM_UNBLOCK, SEM_SWITCH, SEM_DDIM, SEM_DINC, SEM_ASYNC, SEM_UTBLOCK,
 SEM_UTUNBLOCK, SEM_SENDCTL) = range(len(SEM_NAMES))

FN_NAMES = ("", "always", "eq", "ne", "lt", "ge", "add", "sub", "mul", "and", "or", "xor",
            "shl", "shr", "sra", "min", "max", "fmac", "neg", "abs", "itof", "ftoi", "mov",
            "relu", "exp", "log", "tanh", "sigmoid", "gelu", "rsqrt", "recip", "sum", "dot",
            "h2f", "f2h", "activate", "unblock", "div")
(FN_NONE, FN_ALWAYS, FN_EQ, FN_NE, FN_LT, FN_GE, FN_ADD, FN_SUB, FN_MUL, FN_AND, FN_OR, FN_XOR,
 FN_SHL, FN_SHR, FN_SRA, FN_MIN, FN_MAX, FN_FMAC, FN_NEG, FN_ABS, FN_ITOF, FN_FTOI, FN_MOV,
 FN_RELU, FN_EXP, FN_LOG, FN_TANH, FN_SIGMOID, FN_GELU, FN_RSQRT, FN_RECIP, FN_SUM,
 FN_DOT, FN_H2F, FN_F2H, FN_ACTIVATE, FN_UNBLOCK, FN_DIV) = range(len(FN_NAMES))

# dtype codes (same order as isa.DTYPES)
DT_F16, DT_BF16, DT_F32, DT_I16, DT_I8, DT_I32 = range(6)

# engine code word: int32[n, NCODE]
C_SEM, C_FN, C_DT, C_DT2, C_MASK, C_F0, C_F1, C_F2, C_F3, C_F4, C_WIDTH, C_CPE, C_FLOPS = range(13)
NCODE = 13

# per-PE int64 state columns
(P_PC, P_CLOCK, P_STATE, P_WAIT, P_WAITPE, P_VPROG, P_VACTIVE, P_TASK, P_SP, P_BUSY, P_STALL,
 P_IDLE, P_INSTR, P_SENT, P_HOPS, P_RD, P_WR, P_FAULT, P_FARG, P_HPOS, P_KEY, P_NEXTW, P_TACT,
 P_TBLK, P_IMG, P_X0, P_Y0, P_PICK, P_RECVD, P_HALTCLK, P_CEND,
 # the datapath (pipeline.py): when it is free, when the last op began and is done, the
 # byte range that op writes; the register of the last scalar load and when it is usable
 P_VFREE, P_VBEGIN, P_VDONE, P_VWLO, P_VWHI, P_LDREG, P_LDREADY,
 # microthreads (microthread.py): on a PE's row, pc + 1 of a pending `async` prefix (0:
 # none), its first microthread row (-1: none), the masks of busy and of blocked
 # microthreads; on a microthread's row, its PE, its id and pc + 1 of its `async`
 P_ASYNC, P_UTBASE, P_UTBUSY, P_UTBLK, P_UTHOST, P_UTID,
 # the datapath again: where its current busy period began (microthread.py shares it)
 P_VSTART,
 # when the running task began (-1: none open) and the current vector op began (events.py)
 P_TSTART, P_VT0) = range(47)
NPE = 47  # P_CEND: first pc past the PE's own image (control must stay below it)

# PE states
S_OFF, S_RUN, S_RECV, S_SEND, S_IDLE, S_HALT, S_FAULT, S_UTWAIT, S_UTPAUSE = range(9)
STATE_NAMES = ("off", "running", "blocked on receive", "blocked on send", "waiting for a task",
               "halted", "faulted", "waiting for a microthread", "microthread blocked")

# DSD kinds; dsd[p, d, :] = kind, address or color, length (the product of the extents),
# stride of dimension k at DSD_STRIDE + k, extent of dimension k at DSD_EXT + k (dimension 0
# innermost; unused outer dimensions have extent 1, stride 0; fabric DSDs are 1-D)
DK_NONE, DK_MEM, DK_FIN, DK_FOUT = range(4)
MAX_DIMS = 4
DSD_KIND, DSD_ADDR, DSD_LEN, DSD_STRIDE, DSD_EXT = 0, 1, 2, 3, 7
NDSDF = DSD_EXT + MAX_DIMS
# the vector op being costed (MeshState.bank): rows 0-2 its distinct memory operands (base
# byte address, bank groups one element covers, read?, SIMD width its innermost stride
# allows, its DSD register, byte stride per op dimension; addresses and strides modulo the
# bank-group cycle), row B_SHAPE the op's extents per dimension (at B_STRIDE + k)
B_BASE, B_SPAN, B_READ, B_WIDTH, B_DSD, B_STRIDE = 0, 1, 2, 3, 4, 5
NBANKF = B_STRIDE + MAX_DIMS
B_SHAPE = 3
# per PE, the last vector op costed (MeshState.bmemo): cycles, length, the instruction's
# semantics, dtypes, SIMD width and cycles per element (MEMO_INSN code words), then per
# operand (destination, source 0, source 1) what the bank model reads of its DSD: kind, base
# modulo the bank-group cycle, strides, extents (-1 when the op has no such operand)
MEMO_INSN = (C_SEM, C_DT, C_DT2, C_WIDTH, C_CPE)
MEMO_OPERAND = 2 + 2 * MAX_DIMS
MEMO_OPS = 2 + len(MEMO_INSN)
NMEMO = MEMO_OPS + 3 * MEMO_OPERAND

# faults
(F_NONE, F_SRAM_RANGE, F_ALIGN, F_BAD_DSD, F_DSD_LEN, F_NO_ROUTE, F_CALL_DEPTH, F_QUEUE_MISUSE,
 F_DSD_KIND, F_BAD_TASK, F_DSD_UNSET, F_ROUTE_OFF_MESH, F_ROUTE_NOT_RECEIVED, F_ROUTE_LOOP,
 F_ROUTE_NOWHERE, F_BAD_SWITCH, F_PC_RANGE, F_DSD_RANGE, F_ASYNC_OPERAND, F_CTL_NO_TASK,
 F_CTL_DATA, F_SRAM_UNDECLARED, F_DSD_UNDECLARED) = range(23)
FAULT_NAMES = (
    "no fault",
    "SRAM access out of range",
    "misaligned SRAM access",
    "bad DSD length or extent: outside 0-65535 (a multi-dimensional DSD: also their product)",
    "bad DSD: source shorter than destination",
    "send on a color with no route from this PE (its rx lacks ramp)",
    "call stack overflow (depth 8)",
    "queue misuse: recv or fabric input on a color bound to a data task",
    "bad DSD kind for this operand (fabric input as destination, or fabric output as source)",
    "bad task id",
    "DSD register used before it was set up",
    "route error: the tree leaves the mesh",
    "route error: a router transmits to a neighbour that does not receive from it",
    "route error: the tree loops",
    "route error: no PE receives this color from here",
    "switch position outside 0-3",
    "control left the program: no instruction of it follows (missing halt, ret or jmp?)",
    "SRAM access out of range: a memory DSD runs past SRAM (in some dimension)",
    "async op without a fabric operand: only an op that streams from or to the fabric runs on "
    "a microthread",
    "control wavelet names a control task its destination does not declare",
    "a control wavelet reached recv or a fabric input (only the task picker takes control "
    "wavelets: end a data task's stream with one, or receive the data with a data task)",
    "SRAM access beyond the data the program declares (the emulator allocates SRAM only "
    "for declared data: declare the memory the program uses)",
    "SRAM access beyond the data the program declares: a memory DSD runs past it (the "
    "emulator allocates SRAM only for declared data: declare the memory the program uses)",
)

# run status (misc[M_STATUS])
R_RUNNING, R_DONE, R_FAULT, R_DEADLOCK, R_CYCLE_LIMIT, R_PAUSED, R_STOP = range(7)

# why the debugger stopped the run (misc[M_STOP_WHY]); BREAK and WATCH stop before the
# instruction at the PE's pc, the others after the instruction that caused them
(STOP_NONE, STOP_BREAK, STOP_WATCH, STOP_STEP, STOP_FINISH, STOP_COLOR,
 STOP_LINK) = range(7)

# misc int64 slots
(M_HEAP, M_STATUS, M_FAULT_PE, M_ACTIVE, M_MAX_CYCLES, M_BUDGET, M_ROUTE_VER, M_WALK_KEY,
 M_WALK_VER, M_WALK_N, M_WALK_ERR, M_WALK_STAMP,
 # debugger: M_DEBUG = 1 turns every check below on; a run without it pays one test per
 # instruction. STOP_PE/WHY: where and why the run stopped. SKIP_PE: that PE passes its
 # next instruction's breakpoint and watch checks once. STEP_PE/LEFT: stop after that
 # many instructions of that PE. FINISH_PE: stop when its task ends. PENDING: a stop
 # (STOP_COLOR, STOP_LINK) to take after the current instruction. EV_*: the event.
 M_DEBUG, M_STOP_PE, M_STOP_WHY, M_SKIP_PE, M_STEP_PE, M_STEP_LEFT, M_FINISH_PE, M_PENDING,
 M_EV_A, M_EV_B, M_EV_C, M_EV_D,
 # a run paused by its instruction budget: the PE it was running (-1: none) and that PE's
 # limit, so the next run goes on exactly where it stopped (batches change nothing)
 M_RESUME_PE, M_RESUME_LIMIT,
 # tracing (events.py): on?, events in the buffer, the cycle window [LO, HI], events lost
 # to a full buffer, the fill at which the run pauses so the host drains it
 M_TRACE, M_EV_N, M_EV_LO, M_EV_HI, M_EV_LOST, M_EV_SOFT,
 # the first host-stream row (engine/stream.py); rows from there on are streams
 M_STREAM0) = range(33)
NMISC = 33

# cfg int64 slots (from the arch profile)
(CFG_HOP, CFG_RAMP_ON, CFG_RAMP_OFF, CFG_QDEPTH, CFG_LAG, CFG_TASK_SWITCH, CFG_STARTUP,
 CFG_NCOLORS, CFG_WIDTH, CFG_HEIGHT, CFG_SRAM, CFG_DRAIN, CFG_GAP, CFG_LOAD_USE, CFG_ISSUE,
 # SRAM bank model (isa/costs.toml [bank]; engine/vector.py bank_cycles)
 CFG_BANKS, CFG_BANK_BYTES, CFG_BANK_GROUPS, CFG_READ_PORTS, CFG_STRIDE_PM1,
 # microthread rows per PE that has any (microthread.py)
 CFG_MICROTHREADS,
 # bytes of SRAM allocated per PE: the end of the data the images declare (runtime.py);
 # an access past it and inside CFG_SRAM faults as undeclared
 CFG_SRAM_ROW) = range(22)
NCFG = 22

# host streams (stream.py): S.strm[s] = the edge PE it enters, its color, the side it enters
# from (a direction), its payloads spay[OFF : OFF + LEN], how many are sent, the host link's
# time per wavelet and the earliest next send (both in 1/2**STREAM_FRAC cycles), the cycles
# it started, sent its first and its last wavelet
(ST_PE, ST_COLOR, ST_SIDE, ST_OFF, ST_LEN, ST_SENT, ST_STEP, ST_NEXT, ST_START, ST_FIRST,
 ST_LAST) = range(11)
NSTRF = 11
STREAM_FRAC = 16

# direction bits of route tables; link id of a mesh link = node * 4 + direction
D_NORTH, D_EAST, D_SOUTH, D_WEST, D_RAMP = range(5)
# fmt: on
