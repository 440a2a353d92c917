import { toProblem } from '../api/client';

/** A failed call as the user sees it: the problem's title and detail, never a stack. */
export function ProblemView({ error }: { error: unknown }) {
  if (!error) return null;
  const problem = toProblem(error);
  return (
    <div className="problem" role="alert">
      <strong>{problem.title}</strong>
      {problem.detail && <p>{problem.detail}</p>}
    </div>
  );
}
