// Reads the frame id the streaming worker paints into the top-left corner of every picture
// (workers/streaming/frames.py: stamp_frame_id / read_frame_id; keep the two in step).
// Layout: STAMP_BLOCKS square blocks of `block` px along the top edge, white = 1, black = 0:
// marker "10", ID_BITS of the id (most significant first), CHECK_BITS of check (XOR of the
// id's nibbles). Pure: works on a luma array, so Node tests it without a browser.

export const STAMP_BLOCKS = 24;
export const ID_BITS = 18;
export const CHECK_BITS = 4;
export const ID_MODULO = 1 << ID_BITS;
export const DEFAULT_BLOCK = 16;
const THRESHOLD = 128;

export function stampCheck(value) {
  let check = 0;
  while (value) {
    check ^= value & 0xf;
    value >>>= 4;
  }
  return check;
}

// The 24 bits of a frame id, as the worker paints them.
export function stampBits(frameId) {
  const value = ((frameId % ID_MODULO) + ID_MODULO) % ID_MODULO;
  const bits = [1, 0];
  for (let i = ID_BITS - 1; i >= 0; i--) bits.push((value >>> i) & 1);
  const check = stampCheck(value);
  for (let i = CHECK_BITS - 1; i >= 0; i--) bits.push((check >>> i) & 1);
  return bits;
}

export function bitsToFrameId(bits) {
  if (bits.length !== STAMP_BLOCKS || bits[0] !== 1 || bits[1] !== 0) return null;
  let value = 0;
  for (const bit of bits.slice(2, 2 + ID_BITS)) value = value * 2 + bit;
  let check = 0;
  for (const bit of bits.slice(2 + ID_BITS)) check = check * 2 + bit;
  return check === stampCheck(value) ? value : null;
}

// RGBA bytes (ImageData.data) to BT.601 luma, one number per pixel.
export function rgbaToLuma(rgba) {
  const out = new Float32Array(rgba.length / 4);
  for (let i = 0, j = 0; j < out.length; i += 4, j++) {
    out[j] = 0.299 * rgba[i] + 0.587 * rgba[i + 1] + 0.114 * rgba[i + 2];
  }
  return out;
}

// `luma` is a row-major region `width` px wide, at least `block` rows high, whose top-left is
// the picture's top-left, at the picture's own scale (block px per block). Samples the middle
// of each block, because block edges smear under compression. Returns the id or null.
export function decodeStamp(luma, width, block = DEFAULT_BLOCK) {
  if (width < STAMP_BLOCKS * block || luma.length < width * block) return null;
  const lo = Math.floor(block / 4), hi = block - Math.floor(block / 4);
  const bits = [];
  for (let b = 0; b < STAMP_BLOCKS; b++) {
    let sum = 0, n = 0;
    for (let y = lo; y < hi; y++) {
      const row = y * width + b * block;
      for (let x = lo; x < hi; x++) {
        sum += luma[row + x];
        n++;
      }
    }
    bits.push(sum / n > THRESHOLD ? 1 : 0);
  }
  return bitsToFrameId(bits);
}

// Test helper and reference: the luma region a stamped picture has (white 255, black 0).
export function renderStamp(frameId, block = DEFAULT_BLOCK, { white = 255, black = 0 } = {}) {
  const width = STAMP_BLOCKS * block;
  const luma = new Float32Array(width * block);
  stampBits(frameId).forEach((bit, b) => {
    for (let y = 0; y < block; y++) {
      luma.fill(bit ? white : black, y * width + b * block, y * width + (b + 1) * block);
    }
  });
  return { luma, width };
}

// Rows under the stamp's band that still carry traces of its blocks: H.264's deblocking filter
// smooths up to 3 rows across the macroblock edge, and texture filtering one more.
export const STAMP_GUARD = 4;
// Rows along the top that are not part of the view: the blocks and their guard.
export const STAMP_BAND = DEFAULT_BLOCK + STAMP_GUARD;

// The part of a source rectangle (video pixels {x, y, w, h}) below the stamp's band of
// blocks and its guard rows: what the desktop view draws, so the frame-id blocks never show.
// The id stays in the decoded picture, where the viewer reads it from the video element itself.
export function cropStamp(rect, band = STAMP_BAND) {
  const cut = Math.max(0, Math.min(rect.h - 1, band - rect.y));
  return { x: rect.x, y: rect.y + cut, w: rect.w, h: rect.h - cut };
}
