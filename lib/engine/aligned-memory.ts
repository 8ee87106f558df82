/**
 * Shared buffers whose addresses are aligned for O_DIRECT. Node offers no aligned allocation, but a
 * shared WebAssembly.Memory is page-aligned (V8 reserves it with mmap) and its buffer is an ordinary
 * SharedArrayBuffer that worker threads see in place. Alignment is an optimisation, never assumed for
 * correctness: a direct write that the kernel refuses (EINVAL) falls back to a buffered one.
 */

/** What O_DIRECT needs of addresses, offsets and lengths: the largest logical block size in use. */
export const DIRECT_ALIGNMENT = 4096;

const WASM_PAGE = 64 * 1024;

/** The part of WebAssembly.Memory used here (the compiler's libraries here do not declare WebAssembly). */
type WasmMemory = new (descriptor: { initial: number; maximum: number; shared: true }) => { buffer: SharedArrayBuffer };

export interface SharedSlice {
  buffer: SharedArrayBuffer;
  offset: number;
}

/**
 * `count` slices of `bytes` each in one shared buffer. `aligned` says whether each slice starts on a
 * DIRECT_ALIGNMENT boundary (false when WebAssembly memory is unavailable, e.g. a virtual memory limit).
 */
export function allocateSharedSlices(count: number, bytes: number): { slices: SharedSlice[]; aligned: boolean } {
  const stride = Math.ceil(bytes / WASM_PAGE) * WASM_PAGE;
  const pages = (stride * count) / WASM_PAGE;
  try {
    const { Memory } = (globalThis as unknown as { WebAssembly: { Memory: WasmMemory } }).WebAssembly;
    const buffer = new Memory({ initial: pages, maximum: pages, shared: true }).buffer;
    return { slices: Array.from({ length: count }, (_, k) => ({ buffer, offset: k * stride })), aligned: true };
  } catch {
    return { slices: Array.from({ length: count }, () => ({ buffer: new SharedArrayBuffer(bytes), offset: 0 })), aligned: false };
  }
}
