export interface FuzzFailureReport { signature: string; kind: string; message: string; file: string; known: boolean; seed: number }
export interface FuzzRunResult { harness: string; executions: number | null; seconds: number; seed: number; failures: FuzzFailureReport[] }
export function runHarness(o: { harness: string; format: string; runs?: number; seconds?: number; seed: number; env?: Record<string, string>; saveDir?: string; timeoutMs?: number }): FuzzRunResult;
