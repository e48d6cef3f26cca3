//! Parses a device setting (`auto|cpu|cuda[:N]`) and makes libtorch's CUDA backend reachable.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::OnceLock;

use tch::Device;

/// What the operator asked for; `auto` takes the first GPU when there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSetting {
    Auto,
    Cpu,
    Cuda(usize),
}

impl FromStr for DeviceSetting {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| format!("unknown device {s:?}: use auto, cpu, cuda or cuda:N")),
        }
    }
}

impl std::fmt::Display for DeviceSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auto => write!(f, "auto"),
            Self::Cpu => write!(f, "cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// Resolves a setting to a device, failing when a GPU was asked for and is not there.
pub fn select_device(setting: DeviceSetting) -> Result<Device, String> {
    match setting {
        DeviceSetting::Cpu => Ok(Device::Cpu),
        DeviceSetting::Auto => Ok(if cuda_device_count() > 0 {
            Device::Cuda(0)
        } else {
            Device::Cpu
        }),
        DeviceSetting::Cuda(n) => {
            let count = cuda_device_count();
            if n < count {
                Ok(Device::Cuda(n))
            } else {
                Err(format!(
                    "device cuda:{n} asked for, but {count} CUDA device(s) are available"
                ))
            }
        }
    }
}

/// Human-readable device name for logs and the `simverify_model_info` metric.
pub fn device_label(device: Device) -> String {
    match device {
        Device::Cuda(n) => format!("cuda:{n}"),
        _ => "cpu".to_string(),
    }
}

fn cuda_device_count() -> usize {
    load_cuda_backend();
    if tch::Cuda::is_available() {
        tch::Cuda::device_count() as usize
    } else {
        0
    }
}

/// The linker drops `libtorch_cuda.so` because no CPU code references it, so libtorch never
/// registers its CUDA backend. Loading it by hand, from beside the `libtorch_cpu.so` this process
/// already uses, brings the backend back. A CPU-only libtorch simply has no such file.
fn load_cuda_backend() {
    static LOADED: OnceLock<()> = OnceLock::new();
    LOADED.get_or_init(|| {
        let Some(lib) = libtorch_lib_dir().map(|dir| dir.join("libtorch_cuda.so")) else {
            return;
        };
        if !lib.exists() {
            return;
        }
        // SAFETY: libtorch_cuda.so's initialisers only register the CUDA backend with the
        // libtorch already loaded; the library stays loaded for the life of the process.
        match unsafe { libloading::Library::new(&lib) } {
            Ok(library) => std::mem::forget(library),
            Err(e) => tracing::warn!(path = %lib.display(), error = %e, "cannot load the CUDA backend"),
        }
    });
}

/// The directory of the `libtorch_cpu.so` mapped into this process.
fn libtorch_lib_dir() -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| path.ends_with("/libtorch_cpu.so"))
        .and_then(|path| PathBuf::from(path).parent().map(PathBuf::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_settings() {
        assert_eq!("auto".parse(), Ok(DeviceSetting::Auto));
        assert_eq!("CPU".parse(), Ok(DeviceSetting::Cpu));
        assert_eq!("cuda".parse(), Ok(DeviceSetting::Cuda(0)));
        assert_eq!("cuda:3".parse(), Ok(DeviceSetting::Cuda(3)));
        assert!("cuda:x".parse::<DeviceSetting>().is_err());
        assert!("tpu".parse::<DeviceSetting>().is_err());
    }

    #[test]
    fn cpu_is_always_available() {
        assert_eq!(select_device(DeviceSetting::Cpu), Ok(Device::Cpu));
        assert!(select_device(DeviceSetting::Auto).is_ok());
    }
}
