"""The seccomp filter's decisions, evaluated instruction by instruction for every architecture it knows.

A live check can only see what this kernel allows (its x32 ABI may be disabled, so x32 calls fail
anyway); running the filter program through a classic-BPF evaluator shows what it decides on any kernel.
"""

from __future__ import annotations

import struct

import pytest

from cure_bench.sandbox import worker_mounts as wm

ALLOW, DENIED, NO_SUCH_CALL = "allow", "EPERM", "ENOSYS"
GETPID = {"x86_64": 39, "aarch64": 172}
SIGCHLD, CLONE_NEWNS = 17, 0x00020000


def evaluate(program: list[tuple[int, int, int, int]], nr: int, arch: int, arg0: int = 0) -> str:
    """Run a classic BPF program over a seccomp_data (nr, arch, instruction pointer, args) and name its verdict."""
    data = struct.pack("<IIQ6Q", nr, arch, 0, arg0, 0, 0, 0, 0, 0)
    acc, pc = 0, 0
    while True:
        code, jt, jf, k = program[pc]
        if code == 0x20:  # ld [k] (32-bit word)
            acc = struct.unpack_from("<I", data, k)[0]
            pc += 1
        elif code in (0x15, 0x35, 0x45):  # jeq / jge / jset, immediate
            taken = {0x15: acc == k, 0x35: acc >= k, 0x45: bool(acc & k)}[code]
            pc += 1 + (jt if taken else jf)
        elif code == 0x06:  # ret k
            if k == wm._RET_ALLOW:
                return ALLOW
            errno = k & 0xFFFF
            return {wm.EPERM: DENIED, wm.ENOSYS: NO_SUCH_CALL}[errno]
        else:
            raise AssertionError(f"instruction {code:#x} not understood by this evaluator")


@pytest.mark.parametrize("arch", sorted(wm._ARCH))
def test_filter_decisions(arch: str) -> None:
    program, audit_arch = wm._program(arch), wm._ARCH[arch]
    keyring, (unshare, clone), clone3 = wm._NR[arch]

    def decide(nr: int, arg0: int = 0, on: int = audit_arch) -> str:
        return evaluate(program, nr, on, arg0)

    assert decide(GETPID[arch]) == ALLOW
    assert [decide(nr) for nr in keyring] == [DENIED] * 3
    assert decide(unshare, wm.CLONE_NEWUSER) == DENIED and decide(unshare, CLONE_NEWNS) == ALLOW
    assert decide(clone, wm.CLONE_NEWUSER | SIGCHLD) == DENIED and decide(clone, SIGCHLD) == ALLOW
    assert decide(clone3) == NO_SUCH_CALL
    other_arch = next(value for name, value in wm._ARCH.items() if name != arch)
    assert decide(GETPID[arch], on=other_arch) == NO_SUCH_CALL
    assert decide(GETPID[arch], on=0x40000003) == NO_SUCH_CALL  # i386 ABI (int 0x80) on x86_64


def test_x32_numbers_cannot_reach_the_keyring_or_unshare() -> None:
    """x32 calls carry x86_64's audit arch and bit 30 in the number; a filter matching plain numbers would
    let x32 keyctl/unshare through wherever the kernel enables x32."""
    program, audit_arch = wm._program("x86_64"), wm._ARCH["x86_64"]
    keyring, (unshare, _clone), _clone3 = wm._NR["x86_64"]
    for nr in (*keyring, unshare, GETPID["x86_64"]):
        assert evaluate(program, wm.X32_SYSCALL_BIT | nr, audit_arch, wm.CLONE_NEWUSER) == NO_SUCH_CALL, nr
