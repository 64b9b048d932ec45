/**
 * The autograd tape. Every differentiable op that sees an input with `requiresGrad` records one
 * `Node` with its inputs, outputs and a backward closure; the closure reads its outputs' `.grad`
 * and accumulates into its inputs' `.grad` with `accumulateGrad`. `backward(loss)` walks the nodes
 * reachable from `loss` in reverse topological order.
 *
 * Multi-output ops (a recurrent layer returns y, h_n, c_n) are one node. Leaf gradients accumulate
 * across calls (like PyTorch) until `zeroGrad`; gradients of intermediate tensors are released as
 * soon as their producer has run its backward, and each node's closure is dropped after use, so a
 * graph can be backpropagated once.
 */
import type { Storage } from '../backend/interface.ts';
import { Tensor, shapeStr } from '../tensor/tensor.ts';

export interface Node {
  readonly name: string;
  readonly inputs: readonly Tensor[];
  readonly outputs: readonly Tensor[];
  backward: (() => void) | null;
}

let gradEnabled = true;

/** Run fn with gradient recording off (inference, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Should an op on these inputs record itself? */
export function needsGrad(...inputs: readonly (Tensor | null | undefined)[]): boolean {
  if (!gradEnabled) return false;
  for (const t of inputs) if (t && t.requiresGrad) return true;
  return false;
}

/** Record an op on the tape (call only when needsGrad(...inputs) is true). */
export function record(name: string, inputs: readonly Tensor[], outputs: readonly Tensor[], backward: () => void): void {
  const node: Node = { name, inputs, outputs, backward };
  for (const o of outputs) {
    o.requiresGrad = true;
    o.node = node;
  }
}

/**
 * Add gradient g (same shape as t) into t.grad. If `owned`, the storage may be adopted as t.grad
 * without a copy (the caller promises not to use it again).
 */
export function accumulateGrad(t: Tensor, g: Storage, owned: boolean): void {
  if (!t.requiresGrad) return;
  if (t.grad === null) {
    if (owned) {
      t.grad = new Tensor(g, t.shape);
    } else {
      const s = t.backend.alloc(t.size, t.dtype);
      t.backend.copy(g, 0, s, 0, t.size);
      t.grad = new Tensor(s, t.shape);
    }
  } else {
    t.backend.axpy(t.size, 1, g, 0, t.grad.storage, 0);
  }
}

/** The gradient storage of t, allocating zeros when it has none yet (for kernels that accumulate). */
export function gradBuffer(t: Tensor): Storage {
  if (t.grad === null) t.grad = new Tensor(t.backend.alloc(t.size, t.dtype), t.shape);
  return t.grad.storage;
}

/**
 * Backpropagate from `root`. Without `grad`, root must hold one element and gets gradient 1.
 */
export function backward(root: Tensor, grad?: Tensor): void {
  if (!root.requiresGrad) throw new Error('backward: the tensor does not require grad (no parameter or input with requiresGrad reached it)');
  if (grad && grad.size !== root.size) throw new RangeError(`backward: gradient shape ${shapeStr(grad.shape)} does not match tensor shape ${shapeStr(root.shape)}`);
  if (!grad && root.size !== 1) throw new RangeError(`backward: implicit gradient only for one-element tensors, got shape ${shapeStr(root.shape)}; pass a gradient`);
  const order = root.node ? topoOrder(root.node) : [];

  // Refuse before touching any gradient if part of the graph was already consumed.
  for (const node of order) {
    if (!node.backward) {
      throw new Error(`backward: the graph through '${node.name}' was already backpropagated; run the forward pass again`);
    }
  }
  if (grad) {
    accumulateGrad(root, grad.storage, false);
  } else {
    const s = root.backend.alloc(1, root.dtype);
    root.backend.fill(s, 1, 0, 1);
    accumulateGrad(root, s, true);
  }
  for (let k = order.length - 1; k >= 0; k--) {
    const node = order[k];
    if (node.outputs.some((o) => o.grad !== null)) node.backward!();
    node.backward = null;
    // Release gradients of intermediate (non-leaf) outputs, as PyTorch does.
    for (const o of node.outputs) if (o !== root) o.grad = null;
  }
}

/** Nodes reachable from `start`, inputs before the nodes that consume them. */
function topoOrder(start: Node): Node[] {
  // Iterative DFS for topological order (graphs of long unrolled decoders are deep).
  const order: Node[] = [];
  const seen = new Set<Node>([start]);
  const stack: [Node, number][] = [[start, 0]];
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [node, i] = top;
    if (i < node.inputs.length) {
      top[1] = i + 1;
      const child = node.inputs[i].node;
      if (child && !seen.has(child)) {
        seen.add(child);
        stack.push([child, 0]);
      }
    } else {
      stack.pop();
      order.push(node);
    }
  }
  return order;
}
