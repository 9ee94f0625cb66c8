//! A plain C-ABI library: loadable, but it exports no adr plugin.

/// Adds two numbers; exists only so the library exports something.
#[no_mangle]
pub extern "C" fn adr_test_add(a: i32, b: i32) -> i32 {
    a.wrapping_add(b)
}
