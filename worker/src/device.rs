//! Choosing the device the engine runs on, and what a worker reports of it.

use crate::error::{EngineError, Result};
use tch::{Cuda, Device};

/// Most CPU threads a worker or render may ask libtorch for; far more than any machine has,
/// and low enough that a typo (`--threads 100000`) is refused instead of exhausting memory.
pub const MAX_CPU_THREADS: i32 = 1024;

/// Checks a requested CPU thread count against 1..=[`MAX_CPU_THREADS`].
pub fn check_threads(threads: i32) -> std::result::Result<(), String> {
    if (1..=MAX_CPU_THREADS).contains(&threads) {
        Ok(())
    } else {
        Err(format!("must be in 1..={MAX_CPU_THREADS}, not {threads}"))
    }
}

/// Parses `auto`, `cpu`, `cuda` or `cuda:N` into a device, checking it exists.
pub fn parse_device(name: &str) -> Result<Device> {
    let unavailable = |reason: String| EngineError::Device {
        name: name.to_owned(),
        reason,
    };
    match name.trim() {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" | "gpu" => parse_device("cuda:0"),
        other => {
            let index = other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| unavailable("expected auto, cpu or cuda:N".to_owned()))?;
            let count = Cuda::device_count();
            if index as i64 >= count {
                return Err(unavailable(format!("{count} CUDA device(s) visible")));
            }
            Ok(Device::Cuda(index))
        }
    }
}

/// Describes a device for logs and progress output, with the CPU threads asked for (or
/// libtorch's default when `None`).
pub fn describe(device: Device, threads: Option<i32>) -> String {
    match device {
        Device::Cpu => format!(
            "cpu ({} threads)",
            threads.unwrap_or_else(tch::get_num_threads)
        ),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}"),
    }
}

/// Returns the memory of `device` in bytes: the GPU's own for CUDA, the machine's for the CPU;
/// `None` when it cannot be read.
pub fn memory_bytes(device: Device) -> Option<u64> {
    match device {
        Device::Cpu => host_memory_bytes(),
        Device::Cuda(index) => cuda_memory_bytes(index),
        _ => None,
    }
}

/// Reads `MemTotal` from `/proc/meminfo`.
fn host_memory_bytes() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Asks the CUDA driver for the total memory of the `index`th visible device. libtorch has
/// no call for it, so `libcuda.so.1` is opened at run time (machines without a GPU driver
/// lack it, and then this returns `None`); the driver applies `CUDA_VISIBLE_DEVICES` as
/// libtorch does, so `index` means the same device to both.
fn cuda_memory_bytes(index: usize) -> Option<u64> {
    type CuInit = unsafe extern "C" fn(flags: u32) -> i32;
    type CuDeviceGet = unsafe extern "C" fn(device: *mut i32, ordinal: i32) -> i32;
    type CuDeviceTotalMem = unsafe extern "C" fn(bytes: *mut usize, device: i32) -> i32;
    const CUDA_SUCCESS: i32 = 0;

    let ordinal = i32::try_from(index).ok()?;
    // SAFETY: the three symbols have had these C signatures since CUDA 3.2
    // (`cuDeviceTotalMem_v2` is what `cuDeviceTotalMem` names in cuda.h), cuInit may be called
    // any number of times, and the out-pointers are live locals. The library stays loaded
    // while the symbols are used; libtorch holds its own reference to it.
    unsafe {
        let lib = libloading::Library::new("libcuda.so.1").ok()?;
        let init = lib.get::<CuInit>(b"cuInit\0").ok()?;
        let device_get = lib.get::<CuDeviceGet>(b"cuDeviceGet\0").ok()?;
        let total_mem = lib.get::<CuDeviceTotalMem>(b"cuDeviceTotalMem_v2\0").ok()?;
        if init(0) != CUDA_SUCCESS {
            return None;
        }
        let mut device = 0;
        if device_get(&mut device, ordinal) != CUDA_SUCCESS {
            return None;
        }
        let mut bytes = 0usize;
        if total_mem(&mut bytes, device) != CUDA_SUCCESS {
            return None;
        }
        u64::try_from(bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_and_rejects_garbage() {
        assert_eq!(parse_device("cpu").unwrap(), Device::Cpu);
        let err = parse_device("tpu:1").unwrap_err().to_string();
        assert!(err.contains("expected auto, cpu or cuda:N"), "{err}");
    }

    #[test]
    fn refuses_missing_cuda_device() {
        let err = parse_device("cuda:99").unwrap_err().to_string();
        assert!(err.contains("CUDA device(s) visible"), "{err}");
    }

    #[test]
    fn thread_counts_are_bounded_and_described() {
        assert!(check_threads(1).is_ok() && check_threads(MAX_CPU_THREADS).is_ok());
        for bad in [0, -1, MAX_CPU_THREADS + 1, 100_000] {
            let err = check_threads(bad).unwrap_err();
            assert!(err.contains(&bad.to_string()), "{err}");
        }
        assert_eq!(describe(Device::Cpu, Some(3)), "cpu (3 threads)");
    }

    #[test]
    fn host_memory_is_the_machines() {
        let bytes = memory_bytes(Device::Cpu).expect("/proc/meminfo is readable on Linux");
        assert!(bytes > 256 << 20, "{bytes} bytes");
    }

    #[test]
    fn cuda_memory_comes_from_the_driver_when_a_gpu_is_visible() {
        let bytes = memory_bytes(Device::Cuda(0));
        if Cuda::device_count() > 0 {
            assert!(bytes.is_some_and(|b| b > 1 << 30), "{bytes:?}");
        } else {
            assert_eq!(bytes, None);
        }
    }
}
