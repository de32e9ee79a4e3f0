//! Generates the lower-casing table of `src/case.rs` from the standard library's Unicode data, so
//! the filter lower-cases exactly as `char::to_lowercase` does (first character of the mapping)
//! without linking the standard library's larger case tables into the wasm.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // (code point, lower-case code point) for every character whose lower case differs.
    let mapped: Vec<(u32, u32)> = (0..=0x10FFFF_u32)
        .filter_map(char::from_u32)
        .filter_map(|c| {
            let lower = c.to_lowercase().next()?;
            (lower != c).then_some((c as u32, lower as u32))
        })
        .collect();

    // Runs of code points with one offset, one apart or two apart (case pairs alternate).
    let mut runs: Vec<(u32, u32, i32, u32)> = Vec::new(); // (first, count, offset, stride)
    let mut i = 0;
    while i < mapped.len() {
        let (first, lower) = mapped[i];
        let offset = lower as i32 - first as i32;
        let mut count = 1;
        let mut stride = 1;
        if let Some(&(next, next_lower)) = mapped.get(i + 1) {
            let step = next - first;
            if (step == 1 || step == 2) && next_lower as i32 - next as i32 == offset {
                stride = step;
                while let Some(&(p, l)) = mapped.get(i + count as usize) {
                    if p == first + count * stride && l as i32 - p as i32 == offset {
                        count += 1;
                    } else {
                        break;
                    }
                }
            }
        }
        runs.push((first, count, offset, stride));
        i += count as usize;
    }

    let mut out = String::from("/// (first, count, offset, stride), sorted by `first`.\n");
    let _ = writeln!(
        out,
        "static RUNS: [(u32, u16, i32, u8); {}] = [",
        runs.len()
    );
    for (first, count, offset, stride) in &runs {
        let _ = writeln!(out, "    ({first:#x}, {count}, {offset}, {stride}),");
    }
    out.push_str("];\n");
    let dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    if let Err(e) = std::fs::write(dir.join("lower_table.rs"), out) {
        println!("cargo:warning=cannot write the lower-case table: {e}");
        std::process::exit(1);
    }
}
