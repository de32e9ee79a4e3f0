//! The only module that talks to the host. Every call goes through the raw proxy-wasm ABI and
//! turns any status into a `Result`: the SDK's `hostcalls` wrappers `panic!` on statuses they do
//! not expect (and its trait helpers `unwrap`), and a panic kills the VM for its whole worker.
//!
//! One exception: `dispatch_http_call` must go through the SDK so that its dispatcher learns the
//! token and routes the answer to our context. The SDK wrapper panics only for statuses other
//! than Ok, BadArgument and InternalFailure; Envoy's `httpCall` returns exactly those (unknown
//! cluster and missing pseudo-headers are BadArgument), plus InvalidMemoryAccess for pointers
//! outside the VM's memory, which the SDK's own serialisation cannot produce.

use std::ptr::null_mut;
use std::time::Duration;

use crate::limit::{SharedStore, StoreError};
use crate::wire;

/// A status other than Ok from the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostError(pub u32);

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.0 {
            1 => "NotFound",
            2 => "BadArgument",
            3 => "SerializationFailure",
            4 => "ParseFailure",
            6 => "InvalidMemoryAccess",
            7 => "Empty",
            8 => "CasMismatch",
            10 => "InternalFailure",
            12 => "Unimplemented",
            _ => "unknown status",
        };
        write!(f, "host status {} ({name})", self.0)
    }
}

pub type HostResult<T> = Result<T, HostError>;

const OK: u32 = 0;
const NOT_FOUND: u32 = 1;
const CAS_MISMATCH: u32 = 8;

pub const REQUEST_HEADERS: u32 = 0;
pub const HTTP_CALL_RESPONSE_HEADERS: u32 = 6;
pub const REQUEST_BODY: u32 = 0;
pub const HTTP_CALL_RESPONSE_BODY: u32 = 4;
pub const PLUGIN_CONFIGURATION: u32 = 7;

pub const LOG_DEBUG: u32 = 1;
pub const LOG_INFO: u32 = 2;
pub const LOG_WARN: u32 = 3;
pub const LOG_ERROR: u32 = 4;

const METRIC_COUNTER: u32 = 0;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, data: *const u8, size: usize) -> u32;
    fn proxy_get_current_time_nanoseconds(time: *mut u64) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_buffer_bytes(
        buffer: u32,
        start: usize,
        max_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(map: u32, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_get_header_map_value(
        map: u32,
        key: *const u8,
        key_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_get_property(
        path: *const u8,
        path_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_get_shared_data(
        key: *const u8,
        key_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
        cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key: *const u8,
        key_size: usize,
        data: *const u8,
        size: usize,
        cas: u32,
    ) -> u32;
    fn proxy_send_local_response(
        status: u32,
        details: *const u8,
        details_size: usize,
        body: *const u8,
        body_size: usize,
        headers: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
    fn proxy_define_metric(kind: u32, name: *const u8, name_size: usize, id: *mut u32) -> u32;
    fn proxy_increment_metric(id: u32, offset: i64) -> u32;
}

fn check(status: u32) -> HostResult<()> {
    if status == OK {
        Ok(())
    } else {
        Err(HostError(status))
    }
}

/// Takes ownership of a buffer the host allocated through `proxy_on_memory_allocate`.
///
/// # Safety
/// `data` must be null or point to `size` bytes allocated by the SDK's allocator for us.
unsafe fn owned(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() || size == 0 {
        if !data.is_null() {
            // A zero-length allocation still came from our allocator; free it as a box of 0.
            // SAFETY: allocated by `proxy_on_memory_allocate` as a boxed slice of `size` bytes.
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(data, 0)) });
        }
        return Vec::new();
    }
    // SAFETY: the SDK allocator hands out a boxed `[u8]` of exactly `size` bytes.
    unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(data, size)) }.into_vec()
}

pub fn log(level: u32, message: &str) {
    // SAFETY: pointer and length describe a live string.
    // A failed log call has nowhere to be reported; ignoring it is the only option.
    let _ = unsafe { proxy_log(level, message.as_ptr(), message.len()) };
}

/// Nanoseconds since the Unix epoch.
pub fn now_nanos() -> HostResult<u64> {
    let mut t = 0;
    // SAFETY: the host writes one u64.
    check(unsafe { proxy_get_current_time_nanoseconds(&mut t) })?;
    Ok(t)
}

pub fn set_tick_period(period: Duration) -> HostResult<()> {
    let ms = u32::try_from(period.as_millis()).unwrap_or(u32::MAX);
    // SAFETY: plain value.
    check(unsafe { proxy_set_tick_period_milliseconds(ms) })
}

/// Bytes `[start, start + max)` of a buffer; empty when the buffer is absent or empty.
pub fn buffer(kind: u32, start: usize, max: usize) -> HostResult<Vec<u8>> {
    let (mut data, mut size) = (null_mut(), 0);
    // SAFETY: the host writes a pointer it allocated through our allocator and its size.
    match unsafe { proxy_get_buffer_bytes(kind, start, max, &mut data, &mut size) } {
        // SAFETY: as above.
        OK => Ok(unsafe { owned(data, size) }),
        NOT_FOUND | 7 => Ok(Vec::new()),
        s => Err(HostError(s)),
    }
}

pub fn header(map: u32, name: &str) -> HostResult<Option<String>> {
    let (mut data, mut size) = (null_mut(), 0);
    // SAFETY: as for `buffer`.
    match unsafe {
        proxy_get_header_map_value(map, name.as_ptr(), name.len(), &mut data, &mut size)
    } {
        OK => {
            // SAFETY: as above.
            let bytes = unsafe { owned(data, size) };
            Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
        }
        NOT_FOUND => Ok(None),
        s => Err(HostError(s)),
    }
}

pub fn headers(map: u32) -> HostResult<Vec<(String, String)>> {
    let (mut data, mut size) = (null_mut(), 0);
    // SAFETY: as for `buffer`.
    match unsafe { proxy_get_header_map_pairs(map, &mut data, &mut size) } {
        OK => {
            // SAFETY: as above.
            let bytes = unsafe { owned(data, size) };
            wire::decode_pairs(&bytes).ok_or(HostError(3))
        }
        NOT_FOUND => Ok(Vec::new()),
        s => Err(HostError(s)),
    }
}

pub fn property(path: &[&str]) -> HostResult<Option<Vec<u8>>> {
    let encoded = wire::encode_path(path);
    let (mut data, mut size) = (null_mut(), 0);
    // SAFETY: as for `buffer`.
    match unsafe { proxy_get_property(encoded.as_ptr(), encoded.len(), &mut data, &mut size) } {
        // SAFETY: as above.
        OK => Ok(Some(unsafe { owned(data, size) })),
        NOT_FOUND => Ok(None),
        s => Err(HostError(s)),
    }
}

pub fn send_response(status: u16, headers: &[(String, String)], body: &[u8]) -> HostResult<()> {
    let encoded = wire::encode_pairs(headers);
    // SAFETY: all pointers describe live buffers for the duration of the call.
    check(unsafe {
        proxy_send_local_response(
            u32::from(status),
            std::ptr::null(),
            0,
            body.as_ptr(),
            body.len(),
            encoded.as_ptr(),
            encoded.len(),
            -1,
        )
    })
}

pub fn set_effective_context(context_id: u32) -> HostResult<()> {
    // SAFETY: plain value.
    check(unsafe { proxy_set_effective_context(context_id) })
}

pub fn define_counter(name: &str) -> HostResult<u32> {
    let mut id = 0;
    // SAFETY: the host reads the name and writes one u32.
    check(unsafe { proxy_define_metric(METRIC_COUNTER, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

pub fn increment(id: u32) -> HostResult<()> {
    // SAFETY: plain values.
    check(unsafe { proxy_increment_metric(id, 1) })
}

/// Starts the callout; see the module comment for why this one goes through the SDK.
pub fn dispatch_http_call(
    cluster: &str,
    headers: &[(String, String)],
    body: &[u8],
    timeout: Duration,
) -> HostResult<u32> {
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    proxy_wasm::hostcalls::dispatch_http_call(cluster, headers, Some(body), Vec::new(), timeout)
        .map_err(|s| HostError(s as u32))
}

/// Proxy-wasm shared data: per Envoy process and `vm_id`, shared by all workers.
pub struct SharedData;

impl SharedStore for SharedData {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        let (mut data, mut size, mut cas) = (null_mut(), 0, 0);
        // SAFETY: as for `buffer`, plus one u32.
        match unsafe {
            proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas)
        } {
            // SAFETY: as above.
            OK => Ok(Some((unsafe { owned(data, size) }, cas))),
            NOT_FOUND => Ok(None),
            s => Err(StoreError(HostError(s).to_string())),
        }
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<bool, StoreError> {
        // SAFETY: pointers describe live buffers.
        match unsafe {
            proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas)
        } {
            OK => Ok(true),
            CAS_MISMATCH => Ok(false),
            s => Err(StoreError(HostError(s).to_string())),
        }
    }

    fn create(&self, key: &str) -> Result<(), StoreError> {
        if self.get(key)?.is_none() {
            // SAFETY: pointers describe live buffers (an empty value).
            check(unsafe { proxy_set_shared_data(key.as_ptr(), key.len(), [].as_ptr(), 0, 0) })
                .map_err(|e| StoreError(e.to_string()))?;
        }
        Ok(())
    }
}
