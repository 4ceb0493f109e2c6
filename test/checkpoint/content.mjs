// Deterministic checkpoint content shared by the kill-the-writer child and the test that checks it:
// checkpoint K's four fp16 tensors are filled with bit patterns derived from K.
export function contentFor(k) {
  const sd = new Map();
  for (let i = 0; i < 4; i++) {
    const data = new Uint8Array(1 << 20);
    const v = new DataView(data.buffer);
    for (let j = 0; j < data.length; j += 2) v.setUint16(j, (k * 7 + i) & 0x7bff, true);
    sd.set(`model.layers.${i + 1}.mlp.experts.${i}.gate_up_proj`, { dtype: 'float16', shape: [512, 1024], data });
  }
  return sd;
}
