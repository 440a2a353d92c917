/**
 * The versions and payments this browser has made, per API key, until the API lists an
 * account's own (GET /api/v1/versions and /payments). Only ids are kept, never the key: the
 * storage slot is named by a hash of it.
 */
function slot(key: string) {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193) >>> 0;
  return `atelier.known.${h.toString(16)}`;
}

interface Known {
  versions: string[];
  payments: string[];
}

function read(key: string): Known {
  try {
    const parsed = JSON.parse(localStorage.getItem(slot(key)) ?? '{}') as Partial<Known>;
    return { versions: parsed.versions ?? [], payments: parsed.payments ?? [] };
  } catch {
    return { versions: [], payments: [] };
  }
}

export function known(key: string): Known {
  return read(key);
}

export function remember(key: string, kind: keyof Known, id: string) {
  const current = read(key);
  if (current[kind].includes(id)) return;
  current[kind] = [id, ...current[kind]];
  localStorage.setItem(slot(key), JSON.stringify(current));
}
