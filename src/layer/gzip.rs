//! A gzip writer that compresses fixed-size blocks on all cores and still gives the same
//! bytes on any machine. The stream is cut into blocks of [`BLOCK_SIZE`] by position alone;
//! each block is deflated on its own with the previous 32 KiB as dictionary and ends on a
//! byte boundary (a sync flush), so blocks concatenate into one valid deflate stream, as
//! pigz does. How many threads ran, or how the input was chunked by the caller, never
//! changes the output; the block size, level and backend do, and the golden tests pin them.

use std::io::{self, Write};

use flate2::{Compress, Compression, FlushCompress, Status};
use rayon::prelude::*;

/// Bytes of input per independently compressed block.
pub const BLOCK_SIZE: usize = 256 * 1024;
/// Blocks gathered before a batch is compressed in parallel; bounds memory, not output.
const BATCH_BLOCKS: usize = 32;
/// Deflate's window: how much of the previous block primes the next.
const DICTIONARY: usize = 32 * 1024;
/// gzip header: magic, deflate, no flags, mtime 0, no extra flags, OS 255 ("unknown").
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// Writes a gzip member to `inner`; call [`ParallelGzip::finish`] to end it.
pub struct ParallelGzip<W: Write> {
    inner: W,
    level: u32,
    pending: Vec<u8>,
    /// The last [`DICTIONARY`] bytes of input already compressed.
    window: Vec<u8>,
    crc: crc32fast::Hasher,
    len: u64,
    started: bool,
}

impl<W: Write> ParallelGzip<W> {
    pub fn new(inner: W, level: u32) -> ParallelGzip<W> {
        ParallelGzip {
            inner,
            level,
            pending: Vec::with_capacity(BLOCK_SIZE * BATCH_BLOCKS),
            window: Vec::new(),
            crc: crc32fast::Hasher::new(),
            len: 0,
            started: false,
        }
    }

    /// Compresses the full blocks waiting in `pending`, keeping any partial one.
    fn flush_blocks(&mut self) -> io::Result<()> {
        let full = self.pending.len() / BLOCK_SIZE * BLOCK_SIZE;
        if full == 0 {
            return Ok(());
        }
        self.write_header()?;
        let data = &self.pending[..full];
        let compressed: Vec<io::Result<Vec<u8>>> = data
            .par_chunks(BLOCK_SIZE)
            .enumerate()
            .map(|(i, block)| {
                let dictionary = if i == 0 {
                    &self.window[..]
                } else {
                    &data[i * BLOCK_SIZE - DICTIONARY..i * BLOCK_SIZE]
                };
                deflate_block(block, dictionary, self.level, false)
            })
            .collect();
        for block in compressed {
            self.inner.write_all(&block?)?;
        }
        self.window = data[full - DICTIONARY..].to_vec();
        self.pending.drain(..full);
        Ok(())
    }

    fn write_header(&mut self) -> io::Result<()> {
        if !self.started {
            self.inner.write_all(&HEADER)?;
            self.started = true;
        }
        Ok(())
    }

    /// Compresses what is left as the final block, writes the trailer and returns `inner`.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush_blocks()?;
        self.write_header()?;
        let last = deflate_block(&self.pending, &self.window, self.level, true)?;
        self.inner.write_all(&last)?;
        let crc = self.crc.clone().finalize();
        self.inner.write_all(&crc.to_le_bytes())?;
        // ISIZE is the input length modulo 2^32, as RFC 1952 defines it.
        self.inner.write_all(&(self.len as u32).to_le_bytes())?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.crc.update(buf);
        self.len += buf.len() as u64;
        self.pending.extend_from_slice(buf);
        if self.pending.len() >= BLOCK_SIZE * BATCH_BLOCKS {
            self.flush_blocks()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Raw deflate of one block, primed with `dictionary`, ending in a sync flush (or, for the
/// last block, the end of the stream).
fn deflate_block(block: &[u8], dictionary: &[u8], level: u32, last: bool) -> io::Result<Vec<u8>> {
    let mut compress = Compress::new(Compression::new(level), false);
    if !dictionary.is_empty() {
        compress
            .set_dictionary(dictionary)
            .map_err(|e| io::Error::other(format!("deflate dictionary: {e}")))?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(block.len() + block.len() / 64 + 64);
    loop {
        let consumed = compress.total_in() as usize;
        let status = compress
            .compress_vec(&block[consumed..], &mut out, flush)
            .map_err(|e| io::Error::other(format!("deflate: {e}")))?;
        let done = compress.total_in() as usize == block.len() && out.len() < out.capacity();
        match status {
            Status::StreamEnd => break,
            _ if done && !last => break,
            _ => out.reserve(out.capacity().max(4096)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gzip(data: &[u8], pieces: usize) -> Vec<u8> {
        let mut writer = ParallelGzip::new(Vec::new(), 6);
        for chunk in data.chunks(data.len().div_ceil(pieces).max(1)) {
            writer.write_all(chunk).unwrap();
        }
        writer.finish().unwrap()
    }

    fn sample(len: usize) -> Vec<u8> {
        let mut state = 7u32;
        (0..len)
            .map(|i| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                if i % 3 == 0 {
                    (state >> 24) as u8
                } else {
                    b"layer "[i % 6]
                }
            })
            .collect()
    }

    #[test]
    fn output_is_standard_gzip_for_any_size() {
        for len in [
            0,
            1,
            BLOCK_SIZE - 1,
            BLOCK_SIZE,
            BLOCK_SIZE * 3 + 17,
            BLOCK_SIZE * BATCH_BLOCKS + 5,
        ] {
            let data = sample(len);
            let compressed = gzip(&data, 1);
            let mut decoded = Vec::new();
            flate2::read::GzDecoder::new(&compressed[..])
                .read_to_end(&mut decoded)
                .unwrap();
            assert_eq!(decoded, data, "round trip of {len} bytes");
            assert_eq!(&compressed[..10], &HEADER);
        }
    }

    #[test]
    fn output_does_not_depend_on_how_the_input_was_written_or_threads() {
        let data = sample(BLOCK_SIZE * 5 + 1234);
        let one = gzip(&data, 1);
        assert_eq!(one, gzip(&data, 7));
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        assert_eq!(one, pool.install(|| gzip(&data, 3)));
    }
}
