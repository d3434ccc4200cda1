import { ok } from '../api/client';
import { Time } from '../components';

type Row = Record<string, unknown>;

/** A table of API objects: scalar columns as text, timestamps as times, the rest as compact JSON. */
export function ObjectTable({
  rows,
  columns,
  caption,
  actions,
}: {
  rows: Row[];
  columns?: string[];
  caption: string;
  actions?: (row: Row) => React.ReactNode;
}) {
  const keys = columns ?? [...new Set(rows.flatMap((r) => Object.keys(r)))].slice(0, 8);
  return (
    <div className="scroll" tabIndex={0} role="region" aria-label={caption}>
      <table className="grid compact">
        <caption className="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            {keys.map((k) => (
              <th scope="col" key={k}>
                {k}
              </th>
            ))}
            {actions ? (
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            ) : null}
          </tr>
        </thead>
        <tbody>
          {rows.map((row, i) => (
            <tr key={String(row.id ?? row.name ?? row.username ?? i)}>
              {keys.map((k) => (
                <td key={k}>
                  <Cell name={k} value={row[k]} />
                </td>
              ))}
              {actions ? <td>{actions(row)}</td> : null}
            </tr>
          ))}
          {rows.length === 0 ? (
            <tr>
              <td colSpan={keys.length + (actions ? 1 : 0) || 1} className="muted">
                None.
              </td>
            </tr>
          ) : null}
        </tbody>
      </table>
    </div>
  );
}

function Cell({ name, value }: { name: string; value: unknown }) {
  if (value === null || value === undefined) return <span className="muted">—</span>;
  if (typeof value === 'string' && /(At|at|time|Time)$/.test(name) && !Number.isNaN(Date.parse(value))) return <Time at={value} />;
  if (typeof value === 'boolean') return <>{value ? 'yes' : 'no'}</>;
  if (typeof value === 'object') return <code className="small">{JSON.stringify(value)}</code>;
  return <>{String(value)}</>;
}

export const call = ok;
