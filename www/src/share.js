// Share links: the playground's state as JSON, compressed with deflate-raw and written in
// base64url into the URL fragment. Browsers never send the fragment to a server, so a link
// carries the policy without it leaving anyone's machine except in the link itself.

async function pipe(bytes, transform) {
  const stream = new Blob([bytes]).stream().pipeThrough(transform);
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

export function toBase64url(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function fromBase64url(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export async function encodeState(state) {
  const json = new TextEncoder().encode(JSON.stringify(state));
  return toBase64url(await pipe(json, new CompressionStream("deflate-raw")));
}

/// The state in a link's fragment, or an error saying in words what is wrong with the link.
export async function decodeState(fragment) {
  if (!fragment) throw new Error("the link ends at #s= with nothing after it");
  if (!/^[A-Za-z0-9_-]+$/.test(fragment)) {
    const bad = fragment.match(/[^A-Za-z0-9_-]/)[0];
    throw new Error(`the link contains "${bad}", which share links never do (it was changed or cut while being copied)`);
  }
  let bytes;
  try {
    bytes = await pipe(fromBase64url(fragment), new DecompressionStream("deflate-raw"));
  } catch {
    throw new Error(`its ${fragment.length} characters do not decompress: the link was cut short or altered while being copied`);
  }
  let state;
  try {
    state = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw new Error("it decompresses, but not to a playground state");
  }
  if (!state || typeof state !== "object" || typeof state.policy !== "string") throw new Error("it holds no policy");
  if (state.v !== 1) throw new Error(`it was made by another version of the playground (format ${JSON.stringify(state.v)}, this page reads 1)`);
  return state;
}
