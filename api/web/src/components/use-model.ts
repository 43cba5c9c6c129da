import { useEffect, useReducer } from 'preact/hooks';
import type { ChatModel } from '../model.ts';

/** Re-renders the component whenever the model changes. */
export function useModel(model: ChatModel): void {
  const [, bump] = useReducer((n: number) => n + 1, 0);
  useEffect(() => model.subscribe(() => bump(undefined)), [model]);
}
