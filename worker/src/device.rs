//! Choosing the device the engine runs on.

use crate::error::{EngineError, Result};
use tch::{Cuda, Device};

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

/// Describes a device for logs and progress output.
pub fn describe(device: Device) -> String {
    match device {
        Device::Cpu => format!("cpu ({} threads)", tch::get_num_threads()),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}"),
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
}
