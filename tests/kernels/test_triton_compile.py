"""Every Triton kernel compiles for a Hopper GPU (sm_90) at the default model's sizes.

The interpreter runs kernels as NumPy, so it misses what only the compiler rejects
(types that do not unify across branches, unsupported ops). Triton's wheel carries
the NVIDIA backend and ptxas, so compiling ahead of time needs no GPU.
"""
import json
import os
import subprocess
import sys

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from kernels.chains import triton as kc
from kernels.decode import triton as kd
from kernels.elementwise import triton as ke
from kernels.memory import triton as km
from kernels.scan import triton as ks

F, I64P, U8P, I8P, BF = "*fp32", "*i64", "*u8", "*i8", "*bf16"


def _ints(*names):
    return {n: "i32" for n in names}


_READ = dict(q_ptr=F, k_ptr=F, v_ptr=F, mask_ptr=I8P, out_ptr=F, lse_ptr=F, **_ints("S", "DK", "DV"), scale="fp32")
_READ_BWD = dict(q_ptr=F, k_ptr=F, v_ptr=F, mask_ptr=I8P, lse_ptr=F, dout_ptr=F, dq_ptr=F, dk_ptr=F, dv_ptr=F,
                 **_ints("S", "DK", "DV"), scale="fp32")
_SCAN_BWD = dict(a_ptr=F, h0_ptr=F, out_ptr=F, carry_ptr=F, g_ptr=F, da_ptr=F, dh0_ptr=F, b_ptr=F,
                 **_ints("T", "N", "L", "NC", "sab", "sat", "sbb", "sbt"))
_ROWS = dict(q_ptr=F, k_ptr=F, v_ptr=F, idx_ptr=I64P, mask_ptr=U8P, rp_ptr=F, rw_ptr=F, lsep_ptr=F, lsew_ptr=F,
             wp_ptr=F, ww_ptr=F, **_ints("S", "PLAIN", "DK", "DV", "swp", "sww"), scale="fp32")
_ROWS_BWD = dict(q_ptr=F, k_ptr=F, v_ptr=F, idx_ptr=I64P, mask_ptr=U8P, lsep_ptr=F, lsew_ptr=F, drp_ptr=F, drw_ptr=F,
                 wp_ptr=F, ww_ptr=F, dq_ptr=F, dk_ptr=F, dv_ptr=F, dwp_ptr=F, dww_ptr=F,
                 **_ints("S", "PLAIN", "DK", "DV", "swp", "sww"), scale="fp32")
_OUT = dict(x_ptr=F, a_ptr=F, local_ptr=F, reg_ptr=F, snew_ptr=F, u_ptr=F, y_ptr=F, regs_ptr=F, convbuf_ptr=F,
            prevkey_ptr=F, ledger_ptr=I64P, pos_ptr=I64P, mkeys_ptr=F, mvals_ptr=F, mutil_ptr=F, mage_ptr=I64P,
            mvalid_ptr=U8P, routw_ptr=F, routb_ptr=F, outw_ptr=F, op_ptr=I64P, rb_ptr=I64P, ws_ptr=I64P, cs_ptr=I64P,
            ent_ptr=F, delta_ptr=I64P,
            **_ints("layer", "L", "D", "KR", "KC", "NA", "OQ", "OKN", "OV", "OOP", "OG", "OU", "OC", "OF",
                    "NB", "W", "DK", "DV", "P", "PS"), threshold="fp32", scale="fp32", qscale="fp32", cconf="fp32")

_GATED_STRIDES = _ints("sl", "sr", "sm", "ss", "sg", "UP", "DOWN", "IDLE")
_GATED_FWD = dict(x_ptr=F, local_ptr=F, reg_ptr=F, mem_ptr=F, sel_ptr=F, gl_ptr=F, y_ptr=F,
                  **_ints("R", "D", "sx"), **_GATED_STRIDES)
# bf16 autocast: x and sel float32, the block's paths and the gate logits bf16, y float32
_GATED_FWD_BF16 = {**_GATED_FWD, **dict(local_ptr=BF, reg_ptr=BF, mem_ptr=BF, gl_ptr=BF)}
_GATED_BWD = dict(dy_ptr=F, local_ptr=F, reg_ptr=F, mem_ptr=F, sel_ptr=F, gl_ptr=F, dlocal_ptr=F, dreg_ptr=F,
                  dmem_ptr=F, dsel_ptr=F, dgl_ptr=F, **_ints("R", "D", "N", "sdy"), **_GATED_STRIDES)
_GATED_BWD_BF16 = {**_GATED_BWD, **{k: BF for k in ("local_ptr", "reg_ptr", "mem_ptr", "gl_ptr", "dlocal_ptr",
                                                   "dreg_ptr", "dmem_ptr", "dgl_ptr")}}
_ALL_GRADS = dict(D_LOCAL=True, D_REG=True, D_MEM=True, D_SEL=True, D_GATE=True)
_SELECT_FWD = dict(opl_ptr=F, gl_ptr=F, top_ptr=I64P, tgate_ptr=I64P, op_ptr=I64P, gate_ptr=U8P, sel_ptr=F,
                   store_ptr=F, **_ints("R", "N", "so", "sg", "CLEAR", "NOP", "WRITE"), cconf="fp32")
_SELECT_BWD = dict(opl_ptr=F, gl_ptr=F, op_ptr=I64P, gate_ptr=U8P, dsel_ptr=F, dstore_ptr=F, dopl_ptr=F, dgl_ptr=F,
                   **_ints("R", "N", "so", "sg", "sds", "WRITE"))
_SWIGLU_FWD = dict(h_ptr=F, y_ptr=F, **_ints("R", "M", "sh"))
_SWIGLU_BWD = dict(h_ptr=F, dy_ptr=F, dh_ptr=F, **_ints("R", "M", "sh", "sdy"))
_UNIT_FWD = dict(x_ptr=F, y_ptr=F, **_ints("R", "N", "sx"), scale="fp32")
_UNIT_BWD = dict(x_ptr=F, dy_ptr=F, dx_ptr=F, **_ints("R", "N", "sx", "sdy"), scale="fp32")

# (name, kernel, signature without constexprs, constexprs, num_warps) at the "base" preset's sizes
# (d 256, 256 buckets x 8 ways, dk 32, dv 64, 32 scan probes), plus the "default" preset's decode_out
KERNELS = [
    ("scan_fwd_local", ks._fwd_local_kernel, dict(a_ptr=F, b_ptr=F, out_ptr=F, end_ptr=F, prod_ptr=F,
                                                  **_ints("T", "N", "L", "NC", "sab", "sat", "sbb", "sbt")),
     dict(SCALE=True, BLOCK=128), 4),
    ("scan_carry", ks._carry_kernel, dict(init_ptr=F, end_ptr=F, prod_ptr=F, carry_ptr=F, **_ints("N", "NC")),
     dict(HAS_INIT=True, REVERSE=False, BLOCK=128), 4),
    ("scan_carry_back", ks._carry_kernel, dict(init_ptr=F, end_ptr=F, prod_ptr=F, carry_ptr=F, **_ints("N", "NC")),
     dict(HAS_INIT=False, REVERSE=True, BLOCK=128), 4),
    ("scan_fwd_fix", ks._fwd_fix_kernel, dict(a_ptr=F, out_ptr=F, carry_ptr=F, **_ints("T", "N", "L", "NC", "sab", "sat")),
     dict(BLOCK=128), 4),
    ("scan_bwd_local", ks._bwd_local_kernel, dict(a_ptr=F, gout_ptr=F, g_ptr=F, start_ptr=F, prod_ptr=F,
                                                  **_ints("T", "N", "L", "NC", "sab", "sat")), dict(BLOCK=128), 4),
    ("scan_bwd_fix", ks._bwd_fix_kernel, _SCAN_BWD, dict(HAS_H0=True, A_TIME_CONST=True, SCALE=True, BLOCK=128), 4),
    ("scan_bwd_fix_full_a", ks._bwd_fix_kernel, _SCAN_BWD,
     dict(HAS_H0=False, A_TIME_CONST=False, SCALE=False, BLOCK=128), 4),
    # read_rows (MIX False) and read_mix (MIX True); SCAN reads both (WIDE), READ the plain one only
    *[(f"{op}_{kind}_{group}", kernel, sig, dict(WIDE=wide, MIX=mix, BS=bs, BK=32, BV=64), warps)
      for op, mix in (("rows", False), ("mix", True))
      for kind, kernel, sig in (("fwd", km._rows_fwd_kernel, _ROWS), ("bwd", km._rows_bwd_kernel, _ROWS_BWD))
      for group, wide, bs, warps in (("scan", True, 256, 8), ("read", False, 64, 4))],
    ("read_fwd", km._read_fwd_kernel, _READ, dict(BS=64, BK=32, BV=64), 4),
    ("read_fwd_scan", km._read_fwd_kernel, _READ, dict(BS=256, BK=32, BV=64), 8),
    ("read_bwd", km._read_bwd_kernel, _READ_BWD, dict(BS=64, BK=32, BV=64), 4),
    ("table_read", km._table_read_kernel,
     dict(q_ptr=F, probes_ptr=I64P, keys_ptr=F, values_ptr=F, valid_ptr=U8P, rp_ptr=F, rs_ptr=F,
          **_ints("NB", "W", "DK", "DV", "PS", "PW"), scale="fp32"), dict(BS=256, BK=32, BV=64), 8),
    ("table_write", km._table_write_kernel,
     dict(keys_ptr=F, values_ptr=F, util_ptr=F, age_ptr=I64P, valid_ptr=U8P, bucket_ptr=I64P, k_ptr=F, v_ptr=F,
          u_ptr=F, pos_ptr=I64P, write_ptr=U8P, clear_ptr=U8P, wslot_ptr=I64P, cslot_ptr=I64P,
          **_ints("NB", "W", "DK", "DV"), threshold="fp32"), dict(BW=8, BK=32, BV=64), 1),
    ("walk_chains", kc._walk_kernel,
     dict(starts_ptr=I64P, order_ptr=I64P, write_ptr=I8P, ekey_ptr=F, eutil_ptr=F, pos0_ptr=I64P, valid_ptr=I8P,
          keys_ptr=F, util_ptr=F, age_ptr=I64P, occ_ptr=I64P, reads_ptr=I64P, threshold="fp32",
          **_ints("P", "T", "S", "W", "DK", "NPROBE")), dict(BW=8, BK=32), 1),
    ("decode_in", kd._decode_in_kernel,
     dict(x_ptr=F, norm_ptr=F, convw_ptr=F, convbuf_ptr=F, w_ptr=F, b_ptr=F, out_ptr=F, u_ptr=F,
          **_ints("B", "D", "NP", "NA", "KC"), eps="fp32"), dict(BD=256, BN=32, ROWS=8), 4),
    ("decode_mid", kd._decode_mid_kernel,
     dict(a_ptr=F, regs_ptr=F, lam_ptr=F, mlpw_ptr=F, mlpb_ptr=F, row_w_ptr=F, local_ptr=F, reg_ptr=F, snew_ptr=F,
          **_ints("B", "D", "HID", "NA", "NP", "RI0", "KR")), dict(BN=8, BH=1024, BKR=256, ROWS=8), 4),
    ("decode_out_memory", kd._decode_out_kernel, _OUT,
     dict(HAS_MEM=True, BD=256, BKR=256, BNB=256, BS=256, BPS=32, BP=8, BW=8, BK=32, BV=64, BKC=4), 8),
    # the "default" preset: d 128, 64 buckets x 16 ways, 12 probes of 16 scan probes
    ("decode_out_memory_default", kd._decode_out_kernel, _OUT,
     dict(HAS_MEM=True, BD=128, BKR=128, BNB=64, BS=256, BPS=16, BP=16, BW=16, BK=32, BV=64, BKC=4), 8),
    ("decode_out_plain", kd._decode_out_kernel, _OUT,
     dict(HAS_MEM=False, BD=256, BKR=256, BNB=1, BS=1, BPS=1, BP=8, BW=1, BK=1, BV=1, BKC=4), 4),
    ("decode_head", kd._decode_head_kernel, dict(x_ptr=F, norm_ptr=F, w_ptr=F, out_ptr=F, **_ints("B", "D", "V"),
                                                 eps="fp32"), dict(BD=256, BN=32, ROWS=8), 4),
    # the element-wise ops at the "default" preset's sizes: d 128, 10 opcodes, dk 32 (as the launchers pick)
    ("gated_fwd", ke._gated_fwd_kernel, _GATED_FWD, dict(HAS_MEM=True, ROWS=16, BD=128), 4),
    ("gated_fwd_plain", ke._gated_fwd_kernel, _GATED_FWD, dict(HAS_MEM=False, ROWS=16, BD=128), 4),
    ("gated_fwd_bf16", ke._gated_fwd_kernel, _GATED_FWD_BF16, dict(HAS_MEM=True, ROWS=16, BD=128), 4),
    ("gated_bwd", ke._gated_bwd_kernel, _GATED_BWD, dict(HAS_MEM=True, **_ALL_GRADS, ROWS=16, BD=128, BN=16), 4),
    ("gated_bwd_plain", ke._gated_bwd_kernel, _GATED_BWD, dict(HAS_MEM=False, **_ALL_GRADS, ROWS=16, BD=128, BN=16),
     4),
    ("gated_bwd_sel_only", ke._gated_bwd_kernel, _GATED_BWD,
     dict(HAS_MEM=True, D_LOCAL=False, D_REG=False, D_MEM=False, D_SEL=True, D_GATE=False, ROWS=16, BD=128, BN=16),
     4),
    ("gated_bwd_bf16", ke._gated_bwd_kernel, _GATED_BWD_BF16,
     dict(HAS_MEM=True, **_ALL_GRADS, ROWS=16, BD=128, BN=16), 4),
    ("select_fwd", ke._select_fwd_kernel, _SELECT_FWD, dict(HAS_TOP=True, HAS_TGATE=True, ROWS=64, BN=16), 4),
    ("select_fwd_free", ke._select_fwd_kernel, _SELECT_FWD, dict(HAS_TOP=False, HAS_TGATE=False, ROWS=64, BN=16), 4),
    ("select_fwd_bf16", ke._select_fwd_kernel, {**_SELECT_FWD, "opl_ptr": BF, "gl_ptr": BF},
     dict(HAS_TOP=True, HAS_TGATE=True, ROWS=64, BN=16), 4),
    ("select_bwd", ke._select_bwd_kernel, _SELECT_BWD, dict(HAS_DSEL=True, HAS_DSTORE=True, ROWS=64, BN=16), 4),
    ("select_bwd_sel_only", ke._select_bwd_kernel, _SELECT_BWD, dict(HAS_DSEL=True, HAS_DSTORE=False, ROWS=64, BN=16),
     4),
    ("select_bwd_bf16", ke._select_bwd_kernel, {**_SELECT_BWD, **{k: BF for k in ("opl_ptr", "gl_ptr", "dopl_ptr",
                                                                                  "dgl_ptr")}},
     dict(HAS_DSEL=True, HAS_DSTORE=True, ROWS=64, BN=16), 4),
    ("swiglu_fwd", ke._swiglu_fwd_kernel, _SWIGLU_FWD, dict(ROWS=4, BM=512), 8),
    ("swiglu_fwd_bf16", ke._swiglu_fwd_kernel, {**_SWIGLU_FWD, "h_ptr": BF, "y_ptr": BF}, dict(ROWS=4, BM=512), 8),
    ("swiglu_bwd", ke._swiglu_bwd_kernel, _SWIGLU_BWD, dict(ROWS=4, BM=512), 8),
    ("swiglu_bwd_bf16", ke._swiglu_bwd_kernel, {**_SWIGLU_BWD, "h_ptr": BF, "dh_ptr": BF}, dict(ROWS=4, BM=512), 8),
    ("unit_rows_fwd", ke._unit_fwd_kernel, _UNIT_FWD, dict(ROWS=64, BN=32), 4),
    ("unit_rows_fwd_bf16", ke._unit_fwd_kernel, {**_UNIT_FWD, "x_ptr": BF, "y_ptr": BF}, dict(ROWS=64, BN=32), 4),
    ("unit_rows_bwd", ke._unit_bwd_kernel, _UNIT_BWD, dict(ROWS=64, BN=32), 4),
]


def compile_all() -> dict[str, str]:
    """name -> 'ok' or the error, compiling every kernel of KERNELS for sm_90."""
    results = {}
    for name, kernel, sig, consts, warps in KERNELS:
        signature = {**sig, **{k: "constexpr" for k in consts}}
        try:
            compiled = triton.compile(ASTSource(fn=kernel, signature=signature, constexprs=consts),
                                      target=GPUTarget("cuda", 90, 32), options={"num_warps": warps})
            results[name] = "ok" if compiled.asm.get("cubin") else "no cubin"
        except Exception as e:  # report every kernel, not just the first failure
            results[name] = f"{type(e).__name__}: {str(e)[:800]}"
    return results


def test_every_kernel_compiles_for_hopper():
    # Compiling needs real @triton.jit functions: run without the interpreter, in a child.
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_DEFAULT_FP_FUSION"] = "1"
    proc = subprocess.run([sys.executable, __file__], env=env, capture_output=True, text=True, timeout=500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(results) == {k[0] for k in KERNELS}
    bad = {k: v for k, v in results.items() if v != "ok"}
    assert not bad, "\n".join(f"{k}: {v}" for k, v in bad.items())


if __name__ == "__main__":
    print(json.dumps(compile_all()))
