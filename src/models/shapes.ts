/**
 * A seeded generator of small RGB images of coloured shapes with one canonical caption each:
 *
 *   one shape:   "a red circle"
 *   two shapes:  "a blue square left of a yellow triangle"   (the left one is named first)
 *                "a green circle above a red square"         (the upper one is named first)
 *
 * Shapes: circle, square, triangle (apex up); colours: red, green, blue, yellow; radius S/8 to
 * 5S/24 (3–5 px on the default 24×24 image), over a dark background with a little Gaussian noise.
 * Two shapes never overlap — their extents are disjoint along the major axis — and the minor-axis
 * offset is at most (major − 2)/2, so the relation in the caption is never ambiguous; with the
 * naming order fixed, each image has exactly one right caption (exact match is a fair metric).
 *
 * Sample `index` of a dataset with seed `seed` depends on (seed, index) only — any sample can be
 * produced on demand, in any order, on any machine, and always comes out the same.
 */
import { Rng } from '../tensor/rng.ts';
import { checkOptions } from '../nn/module.ts';

export const SHAPE_KINDS = ['circle', 'square', 'triangle'] as const;
export type ShapeKind = (typeof SHAPE_KINDS)[number];
export const SHAPE_COLORS = ['red', 'green', 'blue', 'yellow'] as const;
export type ShapeColor = (typeof SHAPE_COLORS)[number];

const RGB: Record<ShapeColor, [number, number, number]> = {
  red: [0.9, 0.12, 0.1],
  green: [0.12, 0.78, 0.2],
  blue: [0.15, 0.3, 0.95],
  yellow: [0.95, 0.85, 0.12],
};

/** Caption tokens: ids 0, 1, 2 are padding, start and end. */
export const CAPTION_VOCAB = ['<pad>', '<s>', '</s>', 'a', ...SHAPE_COLORS, ...SHAPE_KINDS, 'left', 'of', 'above'] as const;

export interface PlacedShape {
  kind: ShapeKind;
  color: ShapeColor;
  /** Centre (pixels, may be fractional) and radius. */
  x: number;
  y: number;
  r: number;
}

export interface ShapesOptions {
  /** Image side in pixels (default 24, at least 16). */
  size?: number;
  /** Probability of a two-shape image (default 2/3). */
  pairProbability?: number;
  /** Standard deviation of the pixel noise (default 0.03). */
  noise?: number;
}

export interface ShapeSample {
  /** [3, size, size] channel-major RGB in [0, 1]. */
  image: Float32Array;
  caption: string;
  shapes: PlacedShape[];
}

function checkShapesOptions(o: ShapesOptions): Required<ShapesOptions> {
  checkOptions('shapes', o, ['size', 'pairProbability', 'noise']);
  const size = o.size ?? 24;
  if (!Number.isInteger(size) || size < 16 || size > 256) throw new RangeError(`shapes: 'size' must be an integer in [16, 256], got ${String(size)}`);
  const pairProbability = o.pairProbability ?? 2 / 3;
  if (!(pairProbability >= 0 && pairProbability <= 1)) throw new RangeError(`shapes: 'pairProbability' must be in [0, 1], got ${String(pairProbability)}`);
  const noise = o.noise ?? 0.03;
  if (!(noise >= 0 && noise < 1)) throw new RangeError(`shapes: 'noise' must be in [0, 1), got ${String(noise)}`);
  return { size, pairProbability, noise };
}

/** Is pixel centre (px, py) inside the shape? */
function inside(s: PlacedShape, px: number, py: number): boolean {
  const dx = px - s.x, dy = py - s.y;
  if (s.kind === 'circle') return dx * dx + dy * dy <= s.r * s.r;
  if (s.kind === 'square') {
    const h = s.r * 0.85;
    return Math.abs(dx) <= h && Math.abs(dy) <= h;
  }
  // triangle, apex up: from y − r (apex) to y + 0.8r (base), half-width growing to r at the base
  const top = s.y - s.r, bottom = s.y + 0.8 * s.r;
  if (py < top || py > bottom) return false;
  return Math.abs(dx) <= (s.r * (py - top)) / (bottom - top);
}

/** The canonical caption of one or two placed shapes. */
export function captionOf(shapes: readonly PlacedShape[]): string {
  const np = (s: PlacedShape): string => `a ${s.color} ${s.kind}`;
  if (shapes.length === 1) return np(shapes[0]);
  if (shapes.length !== 2) throw new RangeError(`captionOf: expects 1 or 2 shapes, got ${shapes.length}`);
  const [a, b] = shapes;
  const dx = b.x - a.x, dy = b.y - a.y;
  if (Math.abs(dx) >= Math.abs(dy)) {
    const [l, r] = dx >= 0 ? [a, b] : [b, a];
    return `${np(l)} left of ${np(r)}`;
  }
  const [t, u] = dy >= 0 ? [a, b] : [b, a];
  return `${np(t)} above ${np(u)}`;
}

/** Draw one sample from an Rng (the building block; see `shapeSample` for addressed samples). */
export function drawShapes(rng: Rng, options: ShapesOptions = {}): ShapeSample {
  const { size: S, pairProbability, noise } = checkShapesOptions(options);
  const one = (): Omit<PlacedShape, 'x' | 'y'> => ({
    kind: SHAPE_KINDS[rng.int(SHAPE_KINDS.length)],
    color: SHAPE_COLORS[rng.int(SHAPE_COLORS.length)],
    r: (S / 8) * (1 + rng.random() * (2 / 3)), // 3–5 px at 24×24
  });
  const within = (lo: number, hi: number): number => lo + rng.random() * Math.max(0, hi - lo);
  let shapes: PlacedShape[];
  if (rng.random() < pairProbability) {
    // Constructive placement: along the major axis the two extents are disjoint (gap ≥ 1.5 px);
    // the minor-axis offset is at most (major offset − 2) / 2, so the relation is unambiguous.
    const a = one(), b = one();
    const horizontal = rng.random() < 0.5;
    const lowA = a.r + 0.5, highB = S - b.r - 0.5;
    const pa = within(lowA, highB - (a.r + b.r + 1.5));
    const pb = within(pa + a.r + b.r + 1.5, highB);
    const m = (pb - pa - 2) / 2;
    const qa = within(a.r + 0.5, S - a.r - 0.5);
    const qb = within(Math.max(b.r + 0.5, qa - m), Math.min(S - b.r - 0.5, qa + m));
    const A: PlacedShape = horizontal ? { ...a, x: pa, y: qa } : { ...a, x: qa, y: pa };
    const B: PlacedShape = horizontal ? { ...b, x: pb, y: qb } : { ...b, x: qb, y: pb };
    shapes = rng.random() < 0.5 ? [A, B] : [B, A];
  } else {
    const a = one();
    shapes = [{ ...a, x: within(a.r + 0.5, S - a.r - 0.5), y: within(a.r + 0.5, S - a.r - 0.5) }];
  }
  const image = new Float32Array(3 * S * S);
  const bg = 0.08 + 0.06 * rng.random();
  const colors = shapes.map((s) => RGB[s.color].map((v) => Math.min(1, Math.max(0, v + (rng.random() - 0.5) * 0.1))));
  for (let i = 0; i < S; i++) {
    for (let j = 0; j < S; j++) {
      let rgb: number[] = [bg, bg, bg];
      shapes.forEach((s, k) => {
        if (inside(s, j + 0.5, i + 0.5)) rgb = colors[k];
      });
      for (let ch = 0; ch < 3; ch++) {
        const v = rgb[ch] + (noise > 0 ? rng.normal(0, noise) : 0);
        image[(ch * S + i) * S + j] = Math.min(1, Math.max(0, v));
      }
    }
  }
  return { image, caption: captionOf(shapes), shapes };
}

/** The seed of sample (seed, index): a splitmix-style hash, so neighbouring indices are unrelated. */
export function sampleSeed(seed: number, index: number): number {
  let z = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index >>> 0, 0x85ebca77)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x7feb352d) >>> 0;
  z = Math.imul(z ^ (z >>> 15), 0x846ca68b) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

/** Sample `index` of the dataset with seed `seed` (deterministic). */
export function shapeSample(seed: number, index: number, options: ShapesOptions = {}): ShapeSample {
  if (!Number.isInteger(index) || index < 0) throw new RangeError(`shapeSample: index must be a non-negative integer, got ${index}`);
  return drawShapes(new Rng(sampleSeed(seed, index)), options);
}

/** Caption text → token ids (no start/end); throws on words outside the vocabulary. */
export function encodeCaption(caption: string): number[] {
  return caption.trim().split(/\s+/).map((w) => {
    const id = (CAPTION_VOCAB as readonly string[]).indexOf(w);
    if (id < 3) throw new RangeError(`encodeCaption: '${w}' is not a caption word (${CAPTION_VOCAB.slice(3).join(', ')})`);
    return id;
  });
}

export function decodeCaption(ids: readonly number[]): string {
  return ids.map((i) => CAPTION_VOCAB[i] ?? '?').join(' ');
}

/** A tiny text rendering of a sample (one character per pixel: r g b y, '.' background). */
export function asciiArt(sample: ShapeSample, size: number): string {
  const rows: string[] = [];
  for (let i = 0; i < size; i++) {
    let line = '';
    for (let j = 0; j < size; j++) {
      const px = [0, 1, 2].map((c) => sample.image[(c * size + i) * size + j]);
      if (Math.max(...px) < 0.4) line += '.';
      else if (px[0] > 0.6 && px[1] > 0.6) line += 'y';
      else line += 'rgb'[px.indexOf(Math.max(...px))];
    }
    rows.push(line);
  }
  return rows.join('\n');
}
