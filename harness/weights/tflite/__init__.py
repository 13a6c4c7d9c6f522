"""Extract the weights of Arm-style LiteRT (TFLite) files under official checkpoint names.

`extract(path)` reads the constant tensors of conditioners_float32.tflite, dit_model.tflite and
autoencoder_model.tflite (any subset) straight from the flatbuffer (no interpreter, no extra
package), undoes what the converter did to them and names each after the official state dict:

- dequantizes int8 (per-channel or per-tensor scale, zero point) and fp16 constants, including
  DEQUANTIZE / TRANSPOSE / RESHAPE ops applied to constants (weight-only quantization, layout
  transposes the converter left in the graph);
- re-lays them out: FULLY_CONNECTED (out, in) is already the torch layout; CONV_2D weights are
  OHWI (out, 1, k, in) -> torch (out, in, k); TRANSPOSE_CONV (out, 1, k, in) -> torch (in, out, k);
- undoes constant folding it can see: SnakeBeta holds exp(alpha) and 1/(exp(beta)+1e-9) (-> alpha,
  beta); RoPE holds cos/sin tables (-> inv_freq from position 1).

What it cannot undo, it records instead: weight norm is fused (the file holds w = g·v/‖v‖ under
`<module>.weight`, official layout, no weight_g/weight_v), and a LayerNorm whose affine the
converter folded into the following Linear (ff_norm into ff.ff.0.proj: W·diag(γ), b + W·β) is
listed in `folded`. `harness.compare.weightdiff` applies the same fusing and folding to a checkpoint.

Names come from the module scopes litert-torch writes into tensor names (`<qualified
class>_<attr>` segments; a constant's own name or the name of its consumer's output), matched
to official module paths; a tensor without a usable scope is named by a unique (role, shape)
among the expected tensors, and with a reference checkpoint by content. The rest is listed as
unmapped, never guessed.
"""
