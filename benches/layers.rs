//! Throughput of the layer pipeline on a generated tree: collect, tar, gzip and hash, cold
//! and with the layer cache warm. Run with `cargo bench --bench layers`; set
//! `REPAVE_BENCH_FILES` and `REPAVE_BENCH_BLOB_MIB` for other shapes. Speed goals live here
//! and in `benches/compare-peers.sh`, never in tests.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use repave::layer::batch::{write_layers, LayerInput};
use repave::layer::source::Rules;

fn main() {
    let files: usize = env_or("REPAVE_BENCH_FILES", 5000);
    let blob_mib: usize = env_or("REPAVE_BENCH_BLOB_MIB", 20);
    let runs: usize = env_or("REPAVE_BENCH_RUNS", 3);

    let root = tempfile::tempdir().expect("temp dir");
    let tree = root.path().join("tree");
    let bytes = make_tree(&tree, files, blob_mib);
    let mib = bytes as f64 / (1 << 20) as f64;
    println!("tree: {files} files + {blob_mib} MiB blob, {mib:.1} MiB in all");

    let cache = root.path().join("cache");
    for (label, cache) in [
        ("cold (no cache)", None),
        ("warm (layer cache)", Some(cache.as_path())),
    ] {
        let mut times = Vec::new();
        for _ in 0..runs {
            let work = tempfile::tempdir_in(root.path()).expect("work dir");
            let input = LayerInput::Dir {
                dir: tree.clone(),
                prefix: "workspace".to_owned(),
                rules: Rules::default(),
            };
            let start = Instant::now();
            let written =
                write_layers(vec![input], 315_532_801, work.path(), cache).expect("layer");
            times.push(start.elapsed().as_secs_f64());
            std::hint::black_box(written);
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        println!(
            "{label:<20} median {median:.3} s  {:.0} MiB/s",
            mib / median
        );
    }
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Text files that compress like source code, and one incompressible blob; the same
/// arguments always give the same bytes.
fn make_tree(dir: &Path, files: usize, blob_mib: usize) -> u64 {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let words: Vec<String> = (0..500).map(|i| format!("ident{i}")).collect();
    let mut total = 0;
    for i in 0..files {
        let sub = dir.join(format!("pkg{}", i / 50));
        std::fs::create_dir_all(&sub).expect("mkdir");
        let len = 200 + (next() % 20_000) as usize;
        let mut text = String::with_capacity(len + 16);
        while text.len() < len {
            text.push_str(&words[(next() % 500) as usize]);
            text.push(if next() % 8 == 0 { '\n' } else { ' ' });
        }
        std::fs::write(sub.join(format!("f{i}.js")), &text).expect("write");
        total += text.len() as u64;
    }
    let mut blob = std::fs::File::create(dir.join("blob.bin")).expect("blob");
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..blob_mib {
        for word in chunk.chunks_mut(8) {
            word.copy_from_slice(&next().to_le_bytes());
        }
        blob.write_all(&chunk).expect("write blob");
        total += chunk.len() as u64;
    }
    total
}
