/**
 * Held updates of the update gate (issue 17): the list, and one update with its diff to approve or
 * reject. Shown only when the server has the gate (`GET /review` answers; see store.loadHeld).
 */
import { useEffect, useState } from 'preact/hooks';
import { act, getState, loadHeld, useStore } from '../store';
import type { HeldUpdateReview } from '../types';
import { ago, href, localTime, navigate, useTitle } from '../util';

export function ReviewPage() {
  useTitle('Review');
  const { held } = useStore();
  useEffect(() => void loadHeld(), []);
  return (
    <section>
      <h1 tabIndex={-1}>Held updates</h1>
      <p class="muted">Updates the update gate holds until they are approved (see docs/update-gate.md).</p>
      {held === undefined && <p class="muted">This server has no update gate.</p>}
      {held && held.length === 0 && <p class="muted">Nothing is held.</p>}
      {held && held.length > 0 && (
        <div class="scroll">
          <table class="queue">
            <thead>
              <tr>
                <th scope="col">Package</th>
                <th scope="col">Version</th>
                <th scope="col">Why</th>
                <th scope="col">Held since</th>
              </tr>
            </thead>
            <tbody>
              {held.map((update) => (
                <tr key={update.base}>
                  <td class="name">
                    <a href={href.held(update.base)}>{update.base}</a>
                  </td>
                  <td class="mono">{update.version}</td>
                  <td>{update.reasons.map((reason) => reason.message).join('; ')}</td>
                  <td>{ago(update.detected)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

export function HeldPage({ base }: { base: string }) {
  useTitle(`Review ${base}`);
  const { api, user } = useStore();
  const [review, setReview] = useState<HeldUpdateReview | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  useEffect(() => {
    api.review(base).then(setReview, (e: unknown) => setError((e as Error).message));
  }, [api, base]);
  const decide = (what: 'approve' | 'reject') => {
    if (!review) return;
    void act(
      `${what === 'approve' ? 'approved' : 'rejected'} ${base} at ${review.revision.slice(0, 10)}`,
      () =>
        what === 'approve'
          ? getState().api.approve(base, review.revision)
          : getState().api.reject(base, review.revision),
    ).then((ok) => {
      if (!ok) return;
      void loadHeld();
      navigate(href.review());
    });
  };
  return (
    <section>
      <p class="crumbs">
        <a href={href.review()}>Held updates</a> /
      </p>
      <h1 tabIndex={-1}>
        {base} <span class="version mono">{review?.version}</span>
      </h1>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {review && (
        <>
          <div class="card">
            <dl>
              <dt>Revision</dt>
              <dd class="mono">{review.revision}</dd>
              <dt>Since</dt>
              <dd class="mono">{review.base_revision ?? 'the first build'}</dd>
              <dt>Changed upstream</dt>
              <dd>{localTime(review.modified)}</dd>
              <dt>Why held</dt>
              <dd>
                <ul>
                  {review.reasons.map((reason) => (
                    <li key={reason.kind + reason.message}>
                      {reason.message}
                      {reason.until && ` (until ${localTime(reason.until)})`}
                    </li>
                  ))}
                </ul>
              </dd>
              <dt>Files</dt>
              <dd class="mono">
                {review.files.map((file) => `${file.status} ${file.path}`).join(', ') || '–'}
              </dd>
            </dl>
            {user && (
              <div class="actions">
                <button type="button" class="primary" onClick={() => decide('approve')}>
                  Approve and build
                </button>
                <button type="button" class="danger" onClick={() => decide('reject')}>
                  Reject
                </button>
              </div>
            )}
          </div>
          <div class="card">
            <h2>Diff</h2>
            <pre class="code">{review.diff || 'no changes in the package repository'}</pre>
          </div>
        </>
      )}
    </section>
  );
}
