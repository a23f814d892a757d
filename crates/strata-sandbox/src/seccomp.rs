//! The seccomp filter every sandboxed command runs under, as BuildKit runs RUN steps under
//! Docker's default profile: system calls that reach past the namespaces and the dropped
//! capabilities fail with `EPERM`.
//!
//! Refused: creating a user namespace (`clone`/`unshare` with `CLONE_NEWUSER`, which would hand
//! the command a full capability set inside it) and `setns`; the kernel keyring (`keyctl`,
//! `add_key`, `request_key`: not namespaced); `bpf`, `perf_event_open`, `userfaultfd`; the mount
//! API old and new; modules, kexec, reboot, swap, the clock, `acct`, `syslog`, `quotactl`, file
//! handles (`open_by_handle_at`), port I/O, and `io_uring` (`io_uring_setup`, `_enter`,
//! `_register`: its operations run in kernel workers this filter never sees, and it has been a
//! steady source of kernel exploits; Docker's default profile refuses it too). `clone3` fails with `ENOSYS` because its flags sit in
//! memory a filter cannot read; C libraries then fall back to `clone`, whose flags it can. On
//! x86_64 the i386 entry points get the same table (a 32-bit binary must not be a way around it)
//! and x32 numbers are refused.
//!
//! Written by hand, in classic BPF: `seccompiler` kills every system call of a foreign
//! architecture (so any i386 binary in an image) and always sets `no_new_privs` (so `su` and
//! `sudo` in a RUN step would stop working), and `libseccomp` needs a C library at build time.
//! The filter is a deny list checked in a straight line of `jeq`s; it is built before the fork and
//! installed by the command's process just before it takes its identity.

use std::io;

/// `struct seccomp_data` offsets: the syscall number, the audit architecture, the first argument.
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;
/// The low 32 bits of `args[0]` (little-endian).
const OFFSET_ARG0_LOW: u32 = 16;

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const AUDIT_ARCH_I386: u32 = 3 | 0x4000_0000;
#[cfg_attr(not(any(test, target_arch = "aarch64")), allow(dead_code))]
const AUDIT_ARCH_AARCH64: u32 = 183 | 0x8000_0000 | 0x4000_0000;
/// x32 system call numbers on x86_64 carry this bit.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const CLONE_NEWUSER: u32 = 0x1000_0000;

// Classic BPF opcodes (linux/bpf_common.h): class | size/op | mode/source.
/// `BPF_LD | BPF_W | BPF_ABS`.
const BPF_LD_W_ABS: u16 = 0x20;
/// `BPF_JMP | BPF_JEQ | BPF_K`.
const BPF_JEQ_K: u16 = 0x15;
/// `BPF_JMP | BPF_JGE | BPF_K`.
const BPF_JGE_K: u16 = 0x35;
/// `BPF_JMP | BPF_JA`.
const BPF_JA: u16 = 0x05;
/// `BPF_ALU | BPF_AND | BPF_K`.
const BPF_AND_K: u16 = 0x54;
/// `BPF_RET | BPF_K`.
const BPF_RET_K: u16 = 0x06;

const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;

/// What a table says about one system call.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// Always `EPERM`.
    Deny(u32),
    /// `EPERM` when the first argument has `CLONE_NEWUSER` set.
    DenyNewUser(u32),
    /// `ENOSYS`, so callers fall back to an older call the filter can inspect.
    NoSys(u32),
}

/// The rules for one architecture's system call numbers.
struct Table {
    arch: u32,
    rules: Vec<Rule>,
    refuse_x32: bool,
}

/// A compiled filter, ready for [`install`].
#[derive(Debug, Clone)]
pub(crate) struct Filter(Vec<libc::sock_filter>);

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// The native table, from the C library's numbers for this target.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn native_table() -> Table {
    let n = |nr: libc::c_long| u32::try_from(nr).expect("system call numbers are small");
    let mut deny = vec![
        libc::SYS_acct,
        libc::SYS_add_key,
        libc::SYS_bpf,
        libc::SYS_clock_settime,
        libc::SYS_delete_module,
        libc::SYS_finit_module,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fsopen,
        libc::SYS_fspick,
        libc::SYS_init_module,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_io_uring_setup,
        libc::SYS_kexec_file_load,
        libc::SYS_kexec_load,
        libc::SYS_keyctl,
        libc::SYS_lookup_dcookie,
        libc::SYS_mount,
        libc::SYS_mount_setattr,
        libc::SYS_move_mount,
        libc::SYS_name_to_handle_at,
        libc::SYS_open_by_handle_at,
        libc::SYS_open_tree,
        libc::SYS_perf_event_open,
        libc::SYS_pivot_root,
        libc::SYS_quotactl,
        libc::SYS_reboot,
        libc::SYS_request_key,
        libc::SYS_setns,
        libc::SYS_settimeofday,
        libc::SYS_swapoff,
        libc::SYS_swapon,
        libc::SYS_syslog,
        libc::SYS_umount2,
        libc::SYS_userfaultfd,
    ];
    #[cfg(target_arch = "x86_64")]
    deny.extend([libc::SYS_ioperm, libc::SYS_iopl, libc::SYS_uselib]);
    let mut rules: Vec<Rule> = deny.into_iter().map(|nr| Rule::Deny(n(nr))).collect();
    rules.push(Rule::DenyNewUser(n(libc::SYS_clone)));
    rules.push(Rule::DenyNewUser(n(libc::SYS_unshare)));
    rules.push(Rule::NoSys(n(libc::SYS_clone3)));
    Table {
        #[cfg(target_arch = "x86_64")]
        arch: AUDIT_ARCH_X86_64,
        #[cfg(target_arch = "aarch64")]
        arch: AUDIT_ARCH_AARCH64,
        rules,
        refuse_x32: cfg!(target_arch = "x86_64"),
    }
}

/// The i386 entry points of an x86_64 kernel. The C library only carries the native numbers, so
/// these come from the kernel's `arch/x86/entry/syscalls/syscall_32.tbl` (`asm/unistd_32.h`).
#[cfg(target_arch = "x86_64")]
fn i386_table() -> Table {
    let deny = [
        51,  // acct
        286, // add_key
        357, // bpf
        264, // clock_settime
        404, // clock_settime64
        129, // delete_module
        350, // finit_module
        431, // fsconfig
        432, // fsmount
        430, // fsopen
        433, // fspick
        128, // init_module
        426, // io_uring_enter
        427, // io_uring_register
        425, // io_uring_setup
        101, // ioperm
        110, // iopl
        283, // kexec_load
        288, // keyctl
        253, // lookup_dcookie
        21,  // mount
        442, // mount_setattr
        429, // move_mount
        341, // name_to_handle_at
        342, // open_by_handle_at
        428, // open_tree
        336, // perf_event_open
        217, // pivot_root
        131, // quotactl
        88,  // reboot
        287, // request_key
        346, // setns
        79,  // settimeofday
        25,  // stime
        115, // swapoff
        87,  // swapon
        103, // syslog
        22,  // umount
        52,  // umount2
        86,  // uselib
        374, // userfaultfd
        113, // vm86old
        166, // vm86
    ];
    let mut rules: Vec<Rule> = deny.into_iter().map(Rule::Deny).collect();
    rules.push(Rule::DenyNewUser(120)); // clone
    rules.push(Rule::DenyNewUser(310)); // unshare
    rules.push(Rule::NoSys(435)); // clone3
    Table {
        arch: AUDIT_ARCH_I386,
        rules,
        refuse_x32: false,
    }
}

/// The tables of the architectures this machine's processes can call the kernel with.
fn tables() -> Vec<Table> {
    #[cfg(target_arch = "x86_64")]
    return vec![native_table(), i386_table()];
    #[cfg(target_arch = "aarch64")]
    return vec![native_table()];
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    return Vec::new();
}

/// One table's instructions, entered with the architecture checked; every path returns.
fn compile_table(table: &Table, out: &mut Vec<libc::sock_filter>) {
    let errno =
        |e: i32| RET_ERRNO | (u32::try_from(e).expect("errno values are positive") & 0xffff);
    out.push(stmt(BPF_LD_W_ABS, OFFSET_NR));
    if table.refuse_x32 {
        out.push(jump(BPF_JGE_K, X32_SYSCALL_BIT, 0, 1));
        out.push(stmt(BPF_RET_K, errno(libc::EPERM)));
    }
    for rule in &table.rules {
        match *rule {
            Rule::Deny(nr) => {
                out.push(jump(BPF_JEQ_K, nr, 0, 1));
                out.push(stmt(BPF_RET_K, errno(libc::EPERM)));
            }
            Rule::NoSys(nr) => {
                out.push(jump(BPF_JEQ_K, nr, 0, 1));
                out.push(stmt(BPF_RET_K, errno(libc::ENOSYS)));
            }
            Rule::DenyNewUser(nr) => {
                // Not this call: skip the 5 instructions that check its flags.
                out.push(jump(BPF_JEQ_K, nr, 0, 5));
                out.push(stmt(BPF_LD_W_ABS, OFFSET_ARG0_LOW));
                out.push(stmt(BPF_AND_K, CLONE_NEWUSER));
                out.push(jump(BPF_JEQ_K, CLONE_NEWUSER, 0, 1));
                out.push(stmt(BPF_RET_K, errno(libc::EPERM)));
                out.push(stmt(BPF_RET_K, RET_ALLOW));
            }
        }
    }
    out.push(stmt(BPF_RET_K, RET_ALLOW));
}

/// Build the filter: dispatch on the architecture, then that architecture's table. A call from
/// an architecture with no table fails with `ENOSYS` rather than slipping past the rules.
pub(crate) fn filter() -> Filter {
    let tables = tables();
    let mut bodies: Vec<Vec<libc::sock_filter>> = Vec::new();
    for table in &tables {
        let mut body = Vec::new();
        compile_table(table, &mut body);
        bodies.push(body);
    }
    let mut out = vec![stmt(BPF_LD_W_ABS, OFFSET_ARCH)];
    // Dispatch: for table i, `jeq arch → next; ja over` then its body.
    for (table, body) in tables.iter().zip(&bodies) {
        out.push(jump(BPF_JEQ_K, table.arch, 1, 0));
        out.push(stmt(
            BPF_JA,
            u32::try_from(body.len()).expect("filters are small"),
        ));
        out.extend_from_slice(body);
        // Bodies clobber the accumulator: reload the architecture for the next comparison.
        out.push(stmt(BPF_LD_W_ABS, OFFSET_ARCH));
    }
    out.push(stmt(
        BPF_RET_K,
        RET_ERRNO | u32::try_from(libc::ENOSYS).expect("positive"),
    ));
    Filter(out)
}

/// Install `filter` on the calling thread (and what it executes). Without `no_new_privs`, so
/// setuid programs keep working: the kernel allows that to a caller with `CAP_SYS_ADMIN` in its
/// user namespace, which the sandbox's root (real or mapped) has before it takes its identity.
/// Otherwise (an unprivileged caller with no user namespace) `no_new_privs` is set first, as the
/// kernel then requires.
pub(crate) fn install(filter: &Filter) -> io::Result<()> {
    let program = libc::sock_fprog {
        len: u16::try_from(filter.0.len())
            .map_err(|_| io::Error::other("seccomp filter too long"))?,
        filter: filter.0.as_ptr().cast_mut(),
    };
    let load = || {
        // SAFETY: the kernel copies the program; `program` and the instructions outlive the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &raw const program,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    match load() {
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
            rustix::thread::set_no_new_privs(true)?;
            load()
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run the filter the way the kernel does, for one system call.
    fn eval(filter: &Filter, arch: u32, nr: u32, arg0: u64) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_le_bytes());
        data[4..8].copy_from_slice(&arch.to_le_bytes());
        data[16..24].copy_from_slice(&arg0.to_le_bytes());
        let word = |off: u32| {
            let off = off as usize;
            u32::from_le_bytes(data[off..off + 4].try_into().unwrap())
        };
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let ins = filter.0[pc];
            pc += 1;
            match ins.code {
                BPF_LD_W_ABS => acc = word(ins.k),
                BPF_AND_K => acc &= ins.k,
                BPF_JA => pc += ins.k as usize,
                BPF_JEQ_K => pc += usize::from(if acc == ins.k { ins.jt } else { ins.jf }),
                BPF_JGE_K => pc += usize::from(if acc >= ins.k { ins.jt } else { ins.jf }),
                BPF_RET_K => return ins.k,
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    const EPERM: u32 = RET_ERRNO | libc::EPERM as u32;
    const ENOSYS: u32 = RET_ERRNO | libc::ENOSYS as u32;

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn refuses_the_table_on_both_x86_abis_and_allows_the_rest() {
        let f = filter();
        let native = |nr: libc::c_long, arg0| eval(&f, AUDIT_ARCH_X86_64, nr as u32, arg0);
        assert_eq!(native(libc::SYS_keyctl, 0), EPERM);
        assert_eq!(native(libc::SYS_mount, 0), EPERM);
        assert_eq!(native(libc::SYS_unshare, 0x1000_0000), EPERM);
        assert_eq!(native(libc::SYS_unshare, 0x0002_0000 | 0x1000_0000), EPERM);
        assert_eq!(native(libc::SYS_unshare, 0x0000_0400), RET_ALLOW); // CLONE_FILES
        assert_eq!(native(libc::SYS_clone, 0x0001_1200), RET_ALLOW); // fork-like
        assert_eq!(native(libc::SYS_clone, 0x1000_0011), EPERM);
        assert_eq!(native(libc::SYS_clone3, 0), ENOSYS);
        for nr in [425, 426, 427] {
            // io_uring_setup, io_uring_enter, io_uring_register: the same on both ABIs.
            assert_eq!(native(nr, 0), EPERM, "{nr}");
            assert_eq!(eval(&f, AUDIT_ARCH_I386, nr as u32, 0), EPERM, "i386 {nr}");
        }
        for nr in [
            libc::SYS_read,
            libc::SYS_execve,
            libc::SYS_openat,
            libc::SYS_ptrace,
        ] {
            assert_eq!(native(nr, 0), RET_ALLOW, "{nr}");
        }
        assert_eq!(native(0x4000_0000 | libc::SYS_read, 0), EPERM); // x32
        let i386 = |nr: u32, arg0| eval(&f, AUDIT_ARCH_I386, nr, arg0);
        assert_eq!(i386(288, 0), EPERM); // keyctl
        assert_eq!(i386(310, 0x1000_0000), EPERM); // unshare(CLONE_NEWUSER)
        assert_eq!(i386(120, 0x1000_0000), EPERM); // clone(CLONE_NEWUSER)
        assert_eq!(i386(120, 0x11), RET_ALLOW);
        assert_eq!(i386(435, 0), ENOSYS);
        assert_eq!(i386(3, 0), RET_ALLOW); // read
        assert_eq!(eval(&f, AUDIT_ARCH_AARCH64, 63, 0), ENOSYS);
    }

    #[test]
    fn every_jump_lands_inside_the_program() {
        let f = filter();
        for (pc, ins) in f.0.iter().enumerate() {
            let next = pc + 1;
            let targets: Vec<usize> = match ins.code {
                BPF_JA => vec![next + ins.k as usize],
                BPF_JEQ_K | BPF_JGE_K => {
                    vec![next + usize::from(ins.jt), next + usize::from(ins.jf)]
                }
                _ => vec![],
            };
            for t in targets {
                assert!(t < f.0.len(), "instruction {pc} jumps out");
            }
        }
        assert!(f.0.len() < 4096);
    }
}
