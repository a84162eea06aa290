#!/usr/bin/env node
// An independent verifier of a kumiai ledger export, in JavaScript with Node's standard
// library only (node:crypto, node:fs): no npm package, nothing of kumiai's Python.
//
//   node verify.mjs ledger.jsonl [keys.json]
//
// It makes the checks `kumiai ledger verify ledger.jsonl --keys keys.json` makes, in the
// same order, and prints the same JSON report (kumiai.domain.audit.report_document):
// a verdict per entry, tree head, pair of consecutive heads and cosignature, and overall.
// Exit code 0: everything verifies; 1: something does not; 2: the input is unusable.
//
// The signed bytes are RFC 8785 (JCS) canonical JSON, rebuilt here from the parsed
// documents; JCS's numbers and strings are ECMAScript's own (JSON.stringify), so a
// disagreement with the Python verifier would show a canonicalisation bug on one side.

import { createHash, createPublicKey, verify as ed25519Verify } from "node:crypto";
import { readFileSync, realpathSync, statSync } from "node:fs";
import process from "node:process";
import { pathToFileURL } from "node:url";

const EXPORT_TYPE = "kumiai.ledger-export";
const ENTRY_TYPE = "kumiai.ledger-entry";
const HEAD_TYPE = "kumiai.tree-head";
const COSIGN_TYPE = "kumiai.cosignature";
const EXPORT_VERSION = 2;
const LEDGER_VERSION = 2; // entries, tree heads and cosignatures
const REPORT_TYPE = "kumiai.audit-report";
const REPORT_VERSION = 1;
const COORDINATOR = "coordinator";
const KINDS = [
  "consortium.created",
  "member.joined",
  "member.key-rotated",
  "dataset.registered",
  "dataset.updated",
  "project.proposed",
  "project.approved",
  "project.closed",
  "request.made",
  "request.refused",
  "agreement.signed",
  "agreement.revoked",
  "job.started",
  "round.completed",
  "job.refused",
  "job.failed",
  "model.released",
  "model.contributions",
  "privacy.recovered",
  "charter.proposed",
  "charter.signed",
  "charter.adopted",
  "motion.proposed",
  "motion.voted",
  "motion.closed",
  "spinout.created",
  "licence.granted",
  "revenue.reported",
  "royalties.distributed",
  "contribution.started",
  "privacy.charged",
  "theme.created",
  "theme.ranked",
  "project.themed",
  "funds.received",
  "funds.allocated",
  "spend.recorded",
  "milestone.set",
  "milestone.evidence",
  "milestone.accepted",
  "milestone.rejected",
  "model.personalised",
  "analysis.released",
  "model.audited",
  "access.granted",
  "member.invited",
  "consent.signed",
  "consent.revoked",
  "agent.training-started",
  "agent.training-completed",
  "privacy.budget-set",
];
// Acts a user's device signs with its own key (kumiai.domain.device_acts): the entry names
// the key, and the actor must be "device:" + that key's fingerprint.
const DEVICE_KINDS = ["consent.signed", "consent.revoked"];
const OLD_LOG_FIX =
  "A signed log cannot be re-signed: audit it with the kumiai release that wrote it, " +
  "or start a new consortium with this one.";
const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const LONE_SURROGATE = /\p{Cs}/u; // with the u flag only an unpaired surrogate matches
const ROOT = /^[0-9a-f]{64}$/;
const TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const ED25519_SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

/** Input that cannot be audited at all: exit code 2. */
class Unusable extends Error {}
/** A document that does not parse as what it claims to be: an entry's "malformed". */
class Malformed extends Error {}

const own = (object, key) => (Object.hasOwn(object, key) ? object[key] : undefined);
const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);
// Python's repr of a string, close enough for messages (never compared).
const quoted = (text) => `'${String(text)}'`;

// -- RFC 8785 (JCS) --------------------------------------------------------------------

/** The canonical JSON text of a parsed value (RFC 8785 §3.2). */
export function canonicalize(value) {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "number":
      // ECMAScript Number::toString is exactly JCS's number form; -0 prints as 0.
      if (!Number.isFinite(value)) throw new Malformed(`${value} is not a JSON number`);
      return JSON.stringify(value);
    case "string":
      if (LONE_SURROGATE.test(value)) throw new Malformed("a string holds a lone surrogate");
      return JSON.stringify(value);
    case "object": {
      if (Array.isArray(value)) return `[${value.map(canonicalize).join(",")}]`;
      // Array.prototype.sort compares UTF-16 code units: the order RFC 8785 §3.2.3 asks for.
      const keys = Object.keys(value).sort();
      return `{${keys.map((k) => `${canonicalize(k)}:${canonicalize(value[k])}`).join(",")}}`;
    }
    default:
      throw new Malformed(`a ${typeof value} is not JSON`);
  }
}

const canonicalBytes = (value) => Buffer.from(canonicalize(value), "utf8");

// -- Ed25519 and keys ------------------------------------------------------------------

function base64Bytes(text) {
  return typeof text === "string" && BASE64.test(text) ? Buffer.from(text, "base64") : null;
}

const publicKeys = new Map();
function publicKey(b64) {
  if (!publicKeys.has(b64)) {
    const raw = base64Bytes(b64);
    let key = null;
    if (raw && raw.length === 32) {
      try {
        const der = Buffer.concat([ED25519_SPKI_PREFIX, raw]);
        key = createPublicKey({ key: der, format: "der", type: "spki" });
      } catch {
        key = null;
      }
    }
    publicKeys.set(b64, key);
  }
  return publicKeys.get(b64);
}

/** True only when the signature is well-formed and valid for this key and message. */
function signatureValid(publicB64, message, signatureB64) {
  const key = publicKey(publicB64);
  const signature = base64Bytes(signatureB64);
  if (!key || !signature || signature.length !== 64) return false;
  try {
    return ed25519Verify(null, message, key, signature);
  } catch {
    return false;
  }
}

/** kumiai's short name of a key: the first 16 hex digits of SHA-256 of its base64 text. */
const fingerprint = (publicB64) =>
  createHash("sha256").update(publicB64, "utf8").digest("hex").slice(0, 16);

// -- RFC 6962 Merkle tree ----------------------------------------------------------------

const sha256 = (...parts) => {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part);
  return hash.digest();
};
const EMPTY_ROOT = sha256(Buffer.alloc(0));
const leafHash = (bytes) => sha256(Buffer.from([0]), bytes);
const nodeHash = (left, right) => sha256(Buffer.from([1]), left, right);
const isPowerOfTwo = (n) => n > 0 && 2 ** Math.round(Math.log2(n)) === n;
const largestPowerOfTwoBelow = (n) => {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
};

/** Every level of complete aligned subtrees, so any MTH(D[a:b]) costs O(log n) hashes. */
class MerkleTree {
  constructor(leafHashes) {
    this.size = leafHashes.length;
    this.levels = [leafHashes];
    for (let level = leafHashes; level.length > 1; ) {
      const parents = [];
      for (let i = 0; i + 1 < level.length; i += 2) parents.push(nodeHash(level[i], level[i + 1]));
      this.levels.push(parents);
      level = parents;
    }
  }

  /** MTH(D[start:end]) by RFC 6962 §2.1's definition. */
  hash(start, end) {
    const n = end - start;
    if (n === 0) return EMPTY_ROOT;
    if (isPowerOfTwo(n) && start % n === 0) {
      return this.levels[Math.log2(n)][start / n];
    }
    const k = largestPowerOfTwoBelow(n);
    return nodeHash(this.hash(start, start + k), this.hash(start + k, end));
  }

  root(size = this.size) {
    return this.hash(0, size);
  }

  /** PROOF(m, D[0:n]) of RFC 6962 §2.1.2. */
  consistencyProof(m, n) {
    if (m === 0 || m === n) return [];
    const subproof = (m, start, end, complete) => {
      const n = end - start;
      if (m === n) return complete ? [] : [this.hash(start, end)];
      const k = largestPowerOfTwoBelow(n);
      if (m <= k) return [...subproof(m, start, start + k, complete), this.hash(start + k, end)];
      return [...subproof(m - k, start + k, end, false), this.hash(start, start + k)];
    };
    return subproof(m, 0, n, true);
  }
}

/** RFC 9162 §2.1.4.2, step by step, with the trivial cases as kumiai defines them. */
function verifyConsistency(oldSize, newSize, oldRoot, newRoot, proof) {
  if (oldSize > newSize) return false;
  if (oldSize === newSize) return proof.length === 0 && oldRoot.equals(newRoot);
  if (oldSize === 0) return proof.length === 0 && oldRoot.equals(EMPTY_ROOT);
  if (proof.length === 0) return false;
  const path = isPowerOfTwo(oldSize) ? [oldRoot, ...proof] : [...proof];
  // Sizes are below 2^53; BigInt keeps the bit operations exact beyond 2^31.
  let fn = BigInt(oldSize - 1);
  let sn = BigInt(newSize - 1);
  while (fn & 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0n) return false;
    if (fn & 1n || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (!(fn & 1n) && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return fr.equals(oldRoot) && sr.equals(newRoot) && sn === 0n;
}

// -- documents -----------------------------------------------------------------------

function wholeNumber(value, what) {
  if (typeof value !== "number") throw new Malformed(`${what} is not a number`);
  if (!(value >= 0 && value <= MAX_SAFE && Number.isInteger(value))) {
    throw new Malformed(`${what} is not a whole number from 0 to 2^53 - 1`);
  }
  return value;
}

function text(record, name) {
  const value = own(record, name);
  if (typeof value !== "string") throw new Malformed(`${name} is not a string`);
  return value;
}

function requireFields(doc, fields, what) {
  const keys = isObject(doc) ? Object.keys(doc).sort() : null;
  if (!keys || keys.join("\u0000") !== [...fields].sort().join("\u0000")) {
    throw new Malformed(`${what} must hold exactly the fields ${[...fields].sort().join(", ")}`);
  }
}

/** Throws Malformed for another type, Unusable-worthy text for another version. */
function requireVersion(doc, type, version, what, fix) {
  if (!isObject(doc) || own(doc, "type") !== type) throw new Malformed(`not a ${type}`);
  const found = wholeNumber(own(doc, "version"), `the version of the ${type}`);
  if (found === version) return;
  const error = new Malformed(
    found < version
      ? `${what} is ${type} version ${found}, written by an older kumiai; this kumiai reads ` +
          `only version ${version}, signed as RFC 8785 canonical JSON. ${fix}`
      : `${what} is ${type} version ${found}, written by a newer kumiai; this kumiai reads ` +
          `only version ${version}. Upgrade kumiai to read it.`,
  );
  error.unsupportedVersion = true;
  throw error;
}

const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
function requireCanonicalTime(value) {
  const match = typeof value === "string" ? TIME.exec(value) : null;
  const [year, month, day, hour, minute, second] = match ? match.slice(1).map(Number) : [];
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = month === 2 && leap ? 29 : DAYS[month - 1];
  const valid =
    match && year >= 1 && month >= 1 && month <= 12 && day >= 1 && day <= days &&
    hour <= 23 && minute <= 59 && second <= 59;
  if (!valid) {
    throw new Malformed(`time ${JSON.stringify(value)} is not of the form YYYY-MM-DDTHH:MM:SSZ`);
  }
}

const LEAF_FIELDS = ["entry", "signature", "key_fingerprint"];
const ENTRY_FIELDS = ["type", "version", "seq", "time", "actor", "kind", "payload"];
const HEAD_FIELDS = ["type", "version", "size", "root", "time"];

/** A leaf: exactly the signed fields, each in the form it was signed in. */
function parseLeaf(leaf) {
  try {
    let doc;
    try {
      doc = JSON.parse(leaf);
    } catch (error) {
      throw new Malformed(error.message);
    }
    requireFields(doc, LEAF_FIELDS, "a leaf");
    const body = doc.entry;
    requireVersion(body, ENTRY_TYPE, LEDGER_VERSION, "this ledger entry", OLD_LOG_FIX);
    requireFields(body, ENTRY_FIELDS, "an entry");
    const seq = wholeNumber(body.seq, "seq");
    if (typeof body.actor !== "string" || typeof body.kind !== "string") {
      throw new Malformed("actor and kind must be strings");
    }
    if (!isObject(body.payload)) throw new Malformed("the payload is not an object");
    if (typeof doc.signature !== "string" || typeof doc.key_fingerprint !== "string") {
      throw new Malformed("signature and key_fingerprint must be strings");
    }
    requireCanonicalTime(body.time);
    const message = canonicalBytes(body); // the signed bytes; throws on NaN-free oddities
    return {
      seq,
      time: body.time,
      actor: body.actor,
      kind: body.kind,
      payload: body.payload,
      doc,
      message,
    };
  } catch (error) {
    if (!(error instanceof Malformed)) throw error;
    throw new Malformed(
      error.unsupportedVersion ? error.message : `ledger entry is malformed (${error.message})`,
    );
  }
}

function parseHead(doc) {
  try {
    if (!isObject(doc)) throw new Malformed("not a JSON object");
    const head = own(doc, "head");
    requireVersion(head, HEAD_TYPE, LEDGER_VERSION, "this tree head", OLD_LOG_FIX);
    requireFields(head, HEAD_FIELDS, "a tree head");
    const size = wholeNumber(head.size, "size");
    if (typeof head.root !== "string" || !ROOT.test(head.root)) {
      throw new Malformed("root is not 64 lowercase hexadecimal digits");
    }
    requireCanonicalTime(head.time);
    return { size, root: head.root, document: head, signature: doc.signature };
  } catch (error) {
    if (!(error instanceof Malformed) || error.unsupportedVersion) throw error;
    throw new Malformed(`tree head is malformed (${error.message})`);
  }
}

/** What kumiai's reader (load_json) refuses anywhere in a line: not Unicode, not finite. */
function unreadable(value) {
  if (typeof value === "string") return LONE_SURROGATE.test(value) ? "a lone surrogate" : null;
  if (typeof value === "number") return Number.isFinite(value) ? null : "a number out of range";
  const children = Array.isArray(value)
    ? value
    : isObject(value)
      ? Object.entries(value).flat()
      : [];
  for (const child of children) {
    const why = unreadable(child);
    if (why) return why;
  }
  return null;
}

function readUtf8(path, what) {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(readFileSync(path));
  } catch (error) {
    if (error instanceof TypeError) throw new Unusable(`${path} is not UTF-8 text`);
    throw new Unusable(`${what} ${path} cannot be read: ${error.message}`);
  }
}

/** The export's header, entries, heads and cosignatures, as kumiai's read_export takes them. */
export function readExport(path) {
  let isFile = false;
  try {
    isFile = statSync(path).isFile();
  } catch {
    isFile = false;
  }
  if (!isFile) {
    throw new Unusable(
      `ledger export ${path} does not exist; create one with \`kumiai ledger export FILE\``,
    );
  }
  const contents = { coordinatorKey: "", leaves: [], heads: [], cosignatures: [] };
  const lines = readUtf8(path, "ledger export").split(/\r\n|\r|\n/);
  lines.forEach((line, index) => {
    const number = index + 1;
    if (/^[ \t]*$/.test(line)) return;
    try {
      let record;
      try {
        record = JSON.parse(line);
      } catch (error) {
        throw new Malformed(error.message);
      }
      if (!isObject(record)) throw new Malformed("not a JSON object");
      const why = unreadable(record);
      if (why) throw new Malformed(`it holds ${why}`);
      if (number === 1) {
        requireVersion(
          record,
          EXPORT_TYPE,
          EXPORT_VERSION,
          path,
          "Export it again with this kumiai, or verify it with the release that wrote it.",
        );
        contents.coordinatorKey = text(record, "coordinator_key");
        return;
      }
      if (!Object.hasOwn(record, "record")) throw new Malformed("it has no 'record' field");
      const kind = record.record;
      if (kind === "entry") {
        contents.leaves.push(text(record, "leaf"));
      } else if (kind === "tree-head") {
        const signature = text(record, "signature");
        if (!Object.hasOwn(record, "head")) throw new Malformed("it has no 'head' field");
        contents.heads.push(parseHead({ head: record.head, signature }));
      } else if (kind === "cosignature") {
        const size = wholeNumber(own(record, "size"), "size");
        contents.cosignatures.push({
          size,
          witness: text(record, "witness"),
          signature: text(record, "signature"),
        });
      } else {
        throw new Malformed(`unknown record ${JSON.stringify(kind)}`);
      }
    } catch (error) {
      if (!(error instanceof Malformed)) throw error;
      if (error.unsupportedVersion) throw new Unusable(error.message);
      throw new Unusable(`${path}, line ${number}: ${error.message}; the export is malformed`);
    }
  });
  if (!contents.coordinatorKey) throw new Unusable(`${path} is empty; it is not a ledger export`);
  return contents;
}

/** {member: public key} an auditor obtained through another channel. */
export function readPinnedKeys(path) {
  if (path === undefined) return new Map();
  let keys;
  try {
    keys = JSON.parse(readUtf8(path, "keys file"));
  } catch (error) {
    if (error instanceof Unusable) throw error;
    throw new Unusable(`keys file ${path} cannot be used: ${error.message}`);
  }
  if (!isObject(keys) || !Object.values(keys).every((v) => typeof v === "string")) {
    throw new Unusable(
      `keys file ${path} cannot be used: expected a JSON object of member -> public key (base64)`,
    );
  }
  if (unreadable(keys)) {
    throw new Unusable(`keys file ${path} cannot be used: it holds ${unreadable(keys)}`);
  }
  return new Map(Object.entries(keys));
}

// -- the audit -------------------------------------------------------------------------

/** Which key each actor holds as the log is replayed (joins and rotations). */
class KeyRegistry {
  constructor(coordinatorKey, pinned) {
    this.current = new Map([[COORDINATOR, coordinatorKey]]);
    this.history = new Map([[COORDINATOR, [coordinatorKey]]]);
    this.pinned = pinned;
    this.owners = new Map(); // dataset -> the member whose registration stands
  }

  /** Who has held this key, if anyone: a key names one actor, forever. */
  holder(key) {
    for (const [actor, held] of this.history) if (held.includes(key)) return actor;
    return null;
  }

  set(actor, key) {
    this.current.set(actor, key);
    if (!this.history.has(actor)) this.history.set(actor, []);
    this.history.get(actor).push(key);
  }
}

/**
 * A privacy.recovered entry names its job, dataset and both ε, and never records less than
 * was recorded before (kumiai.domain.recovery.recovery_problem, with the same codes).
 */
function recoveryProblem(payload, problem) {
  const fields = isObject(payload) ? payload : {};
  const epsilon = own(fields, "epsilon");
  const recorded = own(fields, "recorded_epsilon");
  const named = typeof own(fields, "job") === "string" && typeof own(fields, "dataset") === "string";
  if (!named || typeof epsilon !== "number" || typeof recorded !== "number") {
    problem("does not name the job, the dataset and both ε as numbers", "malformed");
  } else if (epsilon < recorded) {
    problem(`records ε=${epsilon}, lower than the ε=${recorded} recorded`, "recovered-lower");
  }
}

/** The key this entry must verify under (or null), updating the registry. */
function entryKey(entry, registry, problem) {
  const payload = entry.payload;
  if (!KINDS.includes(entry.kind)) problem(`unknown kind ${quoted(entry.kind)}`, "unknown-kind");
  if (entry.kind === "privacy.recovered") recoveryProblem(payload, problem);
  if (entry.kind === "consortium.created") {
    if (own(payload, "coordinator_key") !== registry.current.get(COORDINATOR)) {
      problem("names a coordinator key other than the export's", "coordinator-key");
    }
    return registry.current.get(COORDINATOR);
  }
  if (entry.kind === "member.joined") {
    const member = own(payload, "member");
    const key = own(payload, "public_key");
    if (typeof member !== "string" || typeof key !== "string") {
      problem("does not name the member and its public key", "malformed");
      return null;
    }
    if (entry.actor !== member) {
      problem(`${quoted(entry.actor)} signed the joining of ${quoted(member)}`, "join-signer");
    }
    if (registry.current.has(member)) problem(`${quoted(member)} joins a second time`, "join-twice");
    const holder = registry.holder(key);
    if (holder !== null && holder !== member) problem(`joins with ${quoted(holder)}'s key`, "key-reused");
    const pinned = registry.pinned.get(member);
    if (pinned !== undefined && pinned !== key) {
      problem(
        `${quoted(member)} joined with a key other than the one pinned in the keys file`,
        "join-pinned",
      );
    }
    registry.set(member, key);
    return key;
  }
  if (DEVICE_KINDS.includes(entry.kind)) {
    const deviceKey = own(payload, "device_key");
    if (typeof deviceKey !== "string") {
      problem("does not name the device's public key (device_key)", "device-signer");
      return null;
    }
    if (entry.actor !== `device:${fingerprint(deviceKey)}`) {
      problem(`${quoted(entry.actor)} is not the name of the device key it carries`, "device-signer");
      return null;
    }
    return deviceKey;
  }
  const key = registry.current.get(entry.actor);
  if (key === undefined) {
    problem(`signed by ${quoted(entry.actor)}, who had no registered key at that time`, "no-key");
    return null;
  }
  if (entry.kind === "member.key-rotated") rotated(entry.actor, payload, key, registry, problem);
  else if (entry.kind === "dataset.registered" || entry.kind === "dataset.updated") {
    datasetOwner(entry.kind, entry.actor, payload, registry, problem);
  } else if (entry.kind === "privacy.charged") {
    const why = chargeProblem(entry.actor, payload, registry);
    if (why !== null) problem(why, "privacy-charge");
  } else if (entry.kind === "privacy.budget-set") {
    const why = budgetProblem(entry.actor, payload, registry);
    if (why !== null) problem(why, "privacy-budget");
  }
  return key;
}

/** Only a dataset's owner sets its lifetime ε, and a positive finite one. */
function budgetProblem(actor, payload, registry) {
  const [dataset, epsilon] = ["dataset", "epsilon"].map((k) => own(payload, k));
  if (typeof dataset !== "string") return "does not name the dataset whose budget it sets";
  if (typeof epsilon !== "number") return "does not name the lifetime ε as a number";
  if (!(epsilon > 0 && epsilon < Infinity)) {
    return `sets a lifetime ε=${epsilon}; a budget is positive and finite`;
  }
  if (registry.owners.get(dataset) !== actor || own(payload, "member") !== actor) {
    return `${quoted(actor)} sets the budget of ${quoted(dataset)}, which is not its dataset`;
  }
  return null;
}

/** A node charges ε only to its own dataset, for a named job, and a positive finite ε. */
function chargeProblem(actor, payload, registry) {
  const [job, dataset, epsilon] = ["job", "dataset", "epsilon"].map((k) => own(payload, k));
  if (typeof job !== "string" || typeof dataset !== "string") {
    return "does not name the job and the dataset charged";
  }
  if (typeof epsilon !== "number") return "does not name the ε charged as a number";
  if (!(epsilon > 0 && epsilon < Infinity)) {
    return `charges ε=${epsilon}; a charge is positive and finite`;
  }
  if (registry.owners.get(dataset) !== actor) {
    return `${quoted(actor)} charges ${quoted(dataset)}, which is not its dataset`;
  }
  return null;
}

/** A rotation counts only when the member signs it with the key it replaces. */
function rotated(actor, payload, key, registry, problem) {
  const newKey = own(payload, "public_key");
  if (typeof newKey !== "string") {
    problem("does not name the new public key", "malformed");
    return;
  }
  const member = own(payload, "member");
  if (actor === COORDINATOR || member !== actor || own(payload, "previous_key") !== key) {
    problem(
      `rotates ${quoted(member)}'s key, but is not signed by ${quoted(member)}'s previous key`,
      "rotation-signer",
    );
    return;
  }
  const holder = registry.holder(newKey);
  if (holder !== null && holder !== actor) {
    problem(`rotates to ${quoted(holder)}'s key`, "key-reused");
    return;
  }
  registry.set(actor, newKey);
}

/** A dataset belongs to the member that first registered it; nobody else registers or
 * updates it (its owner changes it with dataset.updated). */
function datasetOwner(kind, actor, payload, registry, problem) {
  const dataset = own(payload, "dataset");
  const member = own(payload, "member");
  const owner = typeof dataset === "string" ? registry.owners.get(dataset) : undefined;
  if (typeof dataset !== "string" || member !== actor) {
    problem(`names the dataset's member ${quoted(member)}, but ${quoted(actor)} signed it`, "dataset-owner");
  } else if (owner === actor) {
    return;
  } else if (owner !== undefined) {
    problem(`${quoted(actor)} claims ${quoted(dataset)}, which ${quoted(owner)} registered`, "dataset-owner");
  } else if (kind === "dataset.registered") {
    registry.owners.set(dataset, actor);
  } else {
    problem(`updates ${quoted(dataset)}, which nobody registered`, "dataset-owner");
  }
}

// -- the board's minutes (kumiai.domain.minutes): every tally recomputed ---------------

const DECISIONS = [
  "admit-member",
  "approve-project",
  "set-priorities",
  "allocate-funds",
  "accept-milestone",
  "grant-licence",
  "create-spinout",
  "amend-charter",
];
const REQUIRED_FIELDS = {
  "admit-member": ["member"],
  "approve-project": ["project"],
  "set-priorities": ["ranking"],
  "allocate-funds": ["project", "amount"],
  "accept-milestone": ["project", "milestone"],
  "grant-licence": ["licensee", "model"],
  "create-spinout": ["spinout", "founders"],
  "amend-charter": ["charter"],
};
const CHARTER_FIELDS = ["type", "format", "version", "founders", "seats", "rules", "conflicts"];
const MOTION_FIELDS = ["motion", "decision", "payload", "proposer", "charter", "closes_at", "digest"];
const TALLY_COUNTS = ["eligible", "yes", "no", "abstain", "quorum_met", "passed"];
const CHOICES = ["yes", "no", "abstain"];
const FRACTION = /^([0-9]{1,4})\/([0-9]{1,4})$/;
const sha256Hex = (value) => createHash("sha256").update(canonicalBytes(value)).digest("hex");
const sameKeys = (doc, fields) =>
  isObject(doc) &&
  Object.keys(doc).length === fields.length &&
  fields.every((f) => Object.hasOwn(doc, f));
const isNames = (value) => Array.isArray(value) && value.every((v) => typeof v === "string");

function charterNames(value) {
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string" && v !== "")) return null;
  const sorted = [...value].sort();
  if (new Set(value).size !== value.length || sorted.some((v, i) => v !== value[i])) return null;
  return value;
}

function fraction(text, zero = false) {
  const match = typeof text === "string" ? FRACTION.exec(text) : null;
  if (match === null) return null;
  const n = Number(match[1]);
  const d = Number(match[2]);
  return (zero ? n >= 0 : n > 0) && d > 0 && n <= d ? { n, d } : null;
}

/** A charter document parsed as strictly as kumiai.domain.charter.Charter.from_document. */
function parseCharter(doc) {
  // Optional: {"royalties": {"association_share": "n/d"}}, the association's royalty cut.
  const royalties = isObject(doc) && Object.hasOwn(doc, "royalties");
  const fields = royalties ? [...CHARTER_FIELDS, "royalties"] : CHARTER_FIELDS;
  if (!sameKeys(doc, fields) || doc.type !== "kumiai.charter" || doc.format !== 1) {
    return null;
  }
  if (
    royalties &&
    (!sameKeys(doc.royalties, ["association_share"]) ||
      fraction(doc.royalties.association_share, true) === null)
  ) {
    return null;
  }
  if (!Number.isInteger(doc.version) || doc.version < 1) return null;
  const founders = charterNames(doc.founders);
  const seats = charterNames(doc.seats);
  if (founders === null || seats === null || seats.length === 0) return null;
  if (!sameKeys(doc.rules, DECISIONS)) return null;
  const rules = {};
  for (const decision of DECISIONS) {
    const rule = doc.rules[decision];
    if (!sameKeys(rule, ["quorum", "threshold", "period"])) return null;
    if (!Number.isInteger(rule.period) || rule.period < 1) return null;
    const quorum = fraction(rule.quorum);
    const threshold = fraction(rule.threshold);
    if (quorum === null || threshold === null) return null;
    rules[decision] = { quorum, threshold, period: rule.period };
  }
  if (!isObject(doc.conflicts)) return null;
  const conflicts = {};
  for (const [decision, fields] of Object.entries(doc.conflicts)) {
    if (!DECISIONS.includes(decision) || charterNames(fields) === null) return null;
    conflicts[decision] = fields;
  }
  const share = royalties ? fraction(doc.royalties.association_share, true) : null;
  return {
    version: doc.version,
    founders,
    seats,
    rules,
    conflicts,
    associationShare: share,
    digest: sha256Hex(doc),
  };
}

function eligible(charter, decision, payload) {
  const conflicted = new Set();
  for (const field of charter.conflicts[decision] ?? []) {
    const value = own(payload, field);
    if (typeof value === "string") conflicted.add(value);
    else if (Array.isArray(value)) for (const v of value) conflicted.add(v);
  }
  return charter.seats.filter((s) => !conflicted.has(s));
}

function tally(charter, decision, payload, votes) {
  const rule = charter.rules[decision];
  const seats = eligible(charter, decision, payload);
  const counted = seats.filter((s) => votes.has(s)).map((s) => votes.get(s));
  const yes = counted.filter((c) => c === "yes").length;
  const no = counted.filter((c) => c === "no").length;
  const abstain = counted.filter((c) => c === "abstain").length;
  const reached = (f, part, whole) => part * f.d >= f.n * whole;
  const quorumMet = reached(rule.quorum, counted.length, seats.length);
  const passed = quorumMet && yes > no && reached(rule.threshold, yes, yes + no);
  return { eligible: seats.length, yes, no, abstain, quorum_met: quorumMet, passed };
}

/** The time `seconds` after a canonical time, in the same form; null beyond the year 9999. */
function later(time, seconds) {
  const moment = new Date(Date.parse(time) + seconds * 1000);
  if (moment.getUTCFullYear() > 9999) return null;
  return moment.toISOString().replace(/\.\d{3}Z$/, "Z");
}

const field = (object, key) => own(object, key) ?? null;

/** A ranking is proposed as a list or as "a,b,c"; the act records the list. */
function sameRanking(motion, act) {
  let ranking = field(motion, "ranking");
  if (typeof ranking === "string") {
    ranking = ranking
      .split(",")
      .map((t) => t.trim())
      .filter((t) => t);
  }
  const recorded = field(act, "ranking");
  return (
    isNames(ranking) &&
    isNames(recorded) &&
    ranking.length === recorded.length &&
    ranking.every((t, i) => t === recorded[i])
  );
}

/** A whole number proposed as digits ("6000000") reads as the number (domain.money). */
const whole = (value) =>
  typeof value === "string" && /^[1-9][0-9]{0,19}$/.test(value) ? Number(value) : value;

function sameAllocation(motion, act) {
  return (
    field(motion, "project") === field(act, "project") &&
    field(motion, "source") === field(act, "source") &&
    whole(field(motion, "amount")) === field(act, "amount_yen") &&
    whole(field(motion, "site_rounds")) === field(act, "site_rounds")
  );
}

const sameDecision = (rejected) => (motion, act) =>
  field(motion, "project") === field(act, "project") &&
  field(motion, "milestone") === field(act, "milestone") &&
  [true, "true"].includes(field(motion, "reject")) === rejected;

class Minutes {
  constructor() {
    this.proposed = null;
    this.signers = new Set();
    this.current = null;
    this.motions = new Map();
  }

  held(id) {
    return typeof id === "string" ? (this.motions.get(id) ?? null) : null;
  }

  read(entry, problem) {
    const payload = entry.payload;
    const handler = {
      "charter.proposed": () => this.charterProposed(entry, payload),
      "charter.signed": () => this.charterSigned(entry, payload),
      "charter.adopted": () => this.charterAdopted(entry, payload),
      "motion.proposed": () => this.motionProposed(entry, payload),
      "motion.voted": () => this.motionVoted(entry, payload),
      "motion.closed": () => this.motionClosed(entry, payload),
      "project.approved": () => this.projectApproved(entry, payload),
      "theme.ranked": () => this.carriedOut(payload, "set-priorities", sameRanking),
      "funds.allocated": () => this.carriedOut(payload, "allocate-funds", sameAllocation),
      "milestone.accepted": () => this.carriedOut(payload, "accept-milestone", sameDecision(false)),
      "milestone.rejected": () => this.carriedOut(payload, "accept-milestone", sameDecision(true)),
    }[entry.kind];
    const found = handler ? handler() : null;
    if (found) problem(found[0], found[1]);
  }

  charterProposed(entry, payload) {
    const charter = parseCharter(own(payload, "charter"));
    if (charter === null) return ["the proposed charter is malformed", "charter"];
    if (this.proposed !== null || this.current !== null || charter.version !== 1) {
      return ["a founding charter proposed twice, or not as version 1", "charter"];
    }
    if (own(payload, "digest") !== charter.digest || !charter.founders.includes(entry.actor)) {
      return ["the charter's digest or proposer does not hold", "charter"];
    }
    this.proposed = charter;
    return null;
  }

  charterSigned(entry, payload) {
    const charter = this.proposed;
    if (
      charter === null ||
      this.current !== null ||
      own(payload, "version") !== 1 ||
      own(payload, "digest") !== charter.digest ||
      !charter.founders.includes(entry.actor) ||
      this.signers.has(entry.actor)
    ) {
      return [`${quoted(entry.actor)} signs no charter awaiting its signature`, "charter-signature"];
    }
    this.signers.add(entry.actor);
    return null;
  }

  charterAdopted(entry, payload) {
    const bad = ["the charter adopted is not the one signed or voted", "charter"];
    if (entry.actor !== COORDINATOR) return bad;
    const motionId = own(payload, "motion");
    let charter;
    if (motionId === undefined || motionId === null) {
      charter = this.proposed;
      if (
        charter === null ||
        this.current !== null ||
        own(payload, "version") !== 1 ||
        own(payload, "digest") !== charter.digest ||
        !charter.founders.every((f) => this.signers.has(f))
      ) {
        return bad;
      }
    } else {
      const held = this.held(motionId);
      if (held === null || held.outcome !== "passed" || held.used) return bad;
      if (held.decision !== "amend-charter") return bad;
      charter = parseCharter(own(held.payload, "charter"));
      if (charter === null) return bad;
      if (own(payload, "version") !== charter.version) return bad;
      if (own(payload, "digest") !== charter.digest) return bad;
      held.used = true;
    }
    this.current = charter;
    return null;
  }

  motionProposed(entry, payload) {
    const bad = ["a motion the charter in force does not allow", "motion"];
    const charter = this.current;
    if (charter === null || !sameKeys(payload, MOTION_FIELDS)) return bad;
    const { digest, ...document } = payload;
    const motionPayload = payload.payload;
    const decision = payload.decision;
    if (
      typeof payload.motion !== "string" ||
      this.motions.has(payload.motion) ||
      !DECISIONS.includes(decision) ||
      !isObject(motionPayload) ||
      payload.charter !== charter.version ||
      payload.proposer !== entry.actor ||
      !charter.seats.includes(entry.actor) ||
      digest !== sha256Hex(document)
    ) {
      return bad;
    }
    if (REQUIRED_FIELDS[decision].some((f) => !Object.hasOwn(motionPayload, f))) return bad;
    for (const field of charter.conflicts[decision] ?? []) {
      const value = own(motionPayload, field);
      if (!(typeof value === "string" || isNames(value))) return bad;
    }
    if (eligible(charter, decision, motionPayload).length === 0) return bad;
    const closesAt = later(entry.time, charter.rules[decision].period);
    if (closesAt === null || payload.closes_at !== closesAt) return bad;
    this.motions.set(payload.motion, {
      decision,
      payload: motionPayload,
      charter,
      digest,
      closesAt,
      votes: new Map(),
      outcome: null,
      used: false,
    });
    return null;
  }

  motionVoted(entry, payload) {
    const held = this.held(own(payload, "motion"));
    if (
      held === null ||
      held.outcome !== null ||
      own(payload, "digest") !== held.digest ||
      !CHOICES.includes(own(payload, "choice")) ||
      !(entry.time < held.closesAt) ||
      !eligible(held.charter, held.decision, held.payload).includes(entry.actor) ||
      held.votes.has(entry.actor)
    ) {
      return [`a vote by ${quoted(entry.actor)} the charter does not count`, "vote"];
    }
    held.votes.set(entry.actor, payload.choice);
    return null;
  }

  motionClosed(entry, payload) {
    const bad = ["the close does not match the tally recomputed from the votes", "tally"];
    const held = this.held(own(payload, "motion"));
    if (held === null || held.outcome !== null || own(payload, "digest") !== held.digest) {
      return bad;
    }
    const seats = eligible(held.charter, held.decision, held.payload);
    const everyone = seats.every((s) => held.votes.has(s));
    if (entry.time < held.closesAt && !everyone) return bad;
    const result = tally(held.charter, held.decision, held.payload, held.votes);
    const recorded = own(payload, "tally");
    if (!isObject(recorded) || TALLY_COUNTS.some((k) => own(recorded, k) !== result[k])) {
      return bad;
    }
    const expected = result.passed && !Object.hasOwn(payload, "void") ? "passed" : "failed";
    if (own(payload, "outcome") !== expected) return bad;
    held.outcome = expected;
    return null;
  }

  /** An act only a passed motion carries out must name one that says the same. */
  carriedOut(payload, decision, matches) {
    const held = this.held(own(payload, "motion"));
    if (
      held === null ||
      held.outcome !== "passed" ||
      held.used ||
      held.decision !== decision ||
      !matches(held.payload, payload)
    ) {
      return [`a ${decision} act without its passed motion`, "not-voted"];
    }
    held.used = true;
    return null;
  }

  projectApproved(entry, payload) {
    if (this.current === null) return null; // before a charter, one member approves
    const held = this.held(own(payload, "motion"));
    if (
      held === null ||
      held.outcome !== "passed" ||
      held.used ||
      held.decision !== "approve-project" ||
      own(held.payload, "project") !== own(payload, "project")
    ) {
      return ["a project approved without its passed motion", "not-voted"];
    }
    held.used = true;
    return null;
  }
}

// -- royalties (kumiai.domain.royalty_audit, domain.royalties, domain.licence) -----------
// Every royalty recomputed to the yen, in BigInt and exact fractions {n, d} (d > 0).

const RULE = "kumiai.royalties/1: floor rate, association first, member shares, largest remainder";
const MAX_REVENUE_YEN = 10 ** 15;
const VOTED = ["licence", "licensee", "model", "terms"];
const TERM_FIELDS = ["field_of_use", "territory", "starts", "ends", "royalty_rate_bp", "restrictions"];
const DATE = /^(\d{4})-(\d\d)-(\d\d)$/;
const QUARTER = /^(\d{4})-Q([1-4])$/;
const MONTH = /^(\d{4})-(\d\d)$/;

/** The code of a royalty mismatch, as kumiai.domain.audit.royalty_code names it. */
const royaltyCode = (what) =>
  ["licence", "report", "distribution"].includes(what) ? `royalty-${what}` : "royalty-payout";
const textField = (payload, name) => {
  const value = own(payload, name);
  return typeof value === "string" ? value : null;
};
const same = (a, b) => typeof a === typeof b && a === b;
// Python's dict.get: a missing field reads as null.
const sameJson = (a, b) => canonicalize(a ?? null) === canonicalize(b ?? null);

/** A day number for "YYYY-MM-DD" (a real date), or null. */
function dayOf(text) {
  const match = typeof text === "string" ? DATE.exec(text) : null;
  if (match === null) return null;
  const [year, month, day] = match.slice(1).map(Number);
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = month === 2 && leap ? 29 : DAYS[month - 1];
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > days) return null;
  return ordinal(year, month, day);
}

const ordinal = (year, month, day) => {
  const moment = new Date(0);
  moment.setUTCFullYear(year, month - 1, day);
  return Math.round(moment.getTime() / 86400000);
};

/** LicenceTerms.from_document: null when the terms do not hold. */
function licenceTerms(doc) {
  if (!sameKeys(doc, TERM_FIELDS) || !Array.isArray(doc.restrictions)) return null;
  const rate = doc.royalty_rate_bp;
  if (typeof rate !== "number" || !Number.isInteger(rate) || rate < 1 || rate > 10000) return null;
  const starts = dayOf(doc.starts);
  const ends = dayOf(doc.ends);
  if (starts === null || ends === null || ends < starts) return null;
  const filled = (v) => typeof v === "string" && v.trim() !== "";
  if (!doc.restrictions.every(filled) || !filled(doc.field_of_use) || !filled(doc.territory)) {
    return null;
  }
  return { rate, starts, ends };
}

/** The first and last day of a quarter or a month, or null (licence.period_bounds). */
function periodBounds(period) {
  const text = typeof period === "string" ? period : "";
  let year;
  let first;
  let last;
  const quarter = QUARTER.exec(text);
  const month = MONTH.exec(text);
  if (quarter) {
    year = Number(quarter[1]);
    first = 3 * Number(quarter[2]) - 2;
    last = first + 2;
  } else if (month && Number(month[2]) >= 1 && Number(month[2]) <= 12) {
    year = Number(month[1]);
    first = last = Number(month[2]);
  } else {
    return null;
  }
  if (year < 1) return null;
  const end = last === 12 ? ordinal(year + 1, 1, 1) : ordinal(year, last + 1, 1);
  return [ordinal(year, first, 1), end - 1];
}

/** check_revenue_report: the reason a report is refused, or null. */
function revenueProblem(licence, reporter, period, revenue, done) {
  if (reporter !== licence.licensee) {
    return `only the licensee ${quoted(licence.licensee)} reports revenue under this licence`;
  }
  const bounds = periodBounds(period);
  if (bounds === null) return `period ${JSON.stringify(period)} is not a quarter or a month`;
  if (bounds[1] < licence.terms.starts || bounds[0] > licence.terms.ends) {
    return `period ${period} lies outside the licence's term`;
  }
  if (done.has(period)) return `revenue for ${period} is already reported under this licence`;
  if (!Number.isInteger(revenue) || revenue < 0 || revenue > MAX_REVENUE_YEN) {
    return `revenue ${JSON.stringify(revenue)} must be whole yen from 0 to ${MAX_REVENUE_YEN}`;
  }
  return null;
}

/** A recorded share as an exact fraction: its shortest decimal, as Python's repr reads. */
function shareValue(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return null;
  const [mantissa, exponent = "0"] = String(value).toLowerCase().split("e");
  const [whole, decimals = ""] = mantissa.split(".");
  let n = BigInt(whole + decimals);
  let d = 10n ** BigInt(decimals.length);
  const e = BigInt(Number(exponent));
  if (e > 0n) n *= 10n ** e;
  else d *= 10n ** -e;
  return { n, d };
}

const add = (a, b) => ({ n: a.n * b.d + b.n * a.d, d: a.d * b.d });
const byName = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

/** domain.royalties.distribute: the document it records, or the reason it cannot. */
function distribute(revenue, rate, share, shares, owners) {
  const royalty = (BigInt(revenue) * BigInt(rate)) / 10000n;
  let association = (royalty * share.n) / share.d;
  const sums = new Map();
  for (const [dataset, value] of Object.entries(shares)) {
    const member = owners.get(dataset);
    if (member === undefined) return `dataset ${quoted(dataset)} has a share but no registered owner`;
    const exact = shareValue(value);
    if (exact === null) return `the contribution share of ${quoted(dataset)} is not a finite number`;
    sums.set(member, add(sums.get(member) ?? { n: 0n, d: 1n }, exact));
  }
  const weights = [...sums].map(([m, w]) => [m, w.n < 0n ? { n: 0n, d: 1n } : w]);
  const total = weights.reduce((t, [, w]) => add(t, w), { n: 0n, d: 1n });
  let remainder = royalty - association;
  if (total.n === 0n) [association, remainder] = [royalty, 0n];
  const payouts = {};
  const parts = weights.map(([m, w]) => {
    if (total.n === 0n) return { m, floor: 0n, rest: 0n, den: 1n };
    const num = remainder * w.n * total.d;
    const den = w.d * total.n;
    return { m, floor: num / den, rest: num % den, den };
  });
  let leftover = remainder - parts.reduce((t, p) => t + p.floor, 0n);
  parts.sort((a, b) => {
    const ahead = b.rest * a.den - a.rest * b.den; // b's remainder minus a's, scaled
    return ahead > 0n ? 1 : ahead < 0n ? -1 : byName(a.m, b.m);
  });
  for (const part of parts) {
    if (leftover > 0n) {
      part.floor += 1n;
      leftover -= 1n;
    }
  }
  for (const part of [...parts].sort((a, b) => byName(a.m, b.m))) {
    payouts[part.m] = Number(part.floor);
  }
  return {
    royalty_yen: Number(royalty),
    association_yen: Number(association),
    payouts,
    rule: RULE,
  };
}

/** kumiai.domain.royalty_audit.RoyaltyReplay: feed every entry, then finish(). */
class RoyaltyReplay {
  constructor() {
    this.minutes = new Minutes();
    this.owners = new Map();
    this.contributions = new Map(); // seq -> payload
    this.latest = new Map(); // model -> seq of its newest shares
    this.licences = new Map();
    this.reported = new Map(); // licence \0 period -> [seq, revenue]
    this.distributed = new Set();
    this.mismatches = []; // [seq, what, problem]
  }

  read(entry) {
    this.minutes.read(entry, () => {});
    const payload = entry.payload;
    if (entry.kind === "dataset.registered" && entry.actor === own(payload, "member")) {
      const dataset = own(payload, "dataset");
      if (typeof dataset === "string" && !this.owners.has(dataset)) {
        this.owners.set(dataset, entry.actor);
      }
    } else if (entry.kind === "model.contributions" && entry.actor === COORDINATOR) {
      const model = own(payload, "model");
      if (typeof model === "string") {
        this.contributions.set(entry.seq, payload);
        this.latest.set(model, entry.seq);
      }
    } else if (entry.kind === "licence.granted") this.granted(entry, payload);
    else if (entry.kind === "revenue.reported") this.reportedRevenue(entry, payload);
    else if (entry.kind === "royalties.distributed") this.distributedRoyalties(entry, payload);
  }

  flag(seq, what, problem) {
    this.mismatches.push([seq, what, problem]);
  }

  granted(entry, payload) {
    const held = this.minutes.held(textField(payload, "motion"));
    const voted = held === null ? null : held.payload;
    const licence = own(payload, "licence");
    if (
      entry.actor !== COORDINATOR ||
      held === null ||
      held.outcome !== "passed" ||
      held.decision !== "grant-licence" ||
      !isObject(voted) ||
      Object.keys(voted).length === 0 ||
      VOTED.some((k) => !sameJson(own(voted, k), own(payload, k))) ||
      typeof licence !== "string" ||
      this.licences.has(licence)
    ) {
      this.flag(entry.seq, "licence", "is not what a passed grant-licence motion voted");
      return;
    }
    const terms = licenceTerms(own(payload, "terms"));
    if (terms === null) {
      this.flag(entry.seq, "licence", "has terms that do not hold");
      return;
    }
    this.licences.set(licence, { licensee: payload.licensee, model: payload.model, terms });
  }

  reportedRevenue(entry, payload) {
    const name = textField(payload, "licence");
    const licence = name === null ? undefined : this.licences.get(name);
    if (licence === undefined) {
      this.flag(entry.seq, "report", "reports revenue under no granted licence");
      return;
    }
    const period = own(payload, "period");
    const done = new Set(
      [...this.reported.keys()].filter((k) => k.split("\u0000")[0] === name).map((k) => k.split("\u0000")[1]),
    );
    const revenue = own(payload, "revenue_yen");
    const why = revenueProblem(licence, entry.actor, period, revenue, done);
    if (why !== null) {
      this.flag(entry.seq, "report", `is refused: ${why}`);
      return;
    }
    this.reported.set(`${name}\u0000${period}`, [entry.seq, revenue]);
  }

  distributedRoyalties(entry, payload) {
    const seq = entry.seq;
    const name = textField(payload, "licence");
    const period = textField(payload, "period");
    const key = `${name}\u0000${period}`;
    const report = name === null || period === null ? undefined : this.reported.get(key);
    const licence = name === null ? undefined : this.licences.get(name);
    if (
      entry.actor !== COORDINATOR ||
      report === undefined ||
      licence === undefined ||
      this.distributed.has(key)
    ) {
      this.flag(seq, "distribution", "follows no valid revenue report of its own");
      return;
    }
    this.distributed.add(key);
    const revenue = report[1];
    if (!same(own(payload, "revenue_yen"), revenue)) this.flag(seq, "revenue_yen", "differs");
    const used = this.latest.get(licence.model);
    if (used === undefined) {
      this.flag(seq, "contributions_seq", "names shares, but the model has none recorded");
      return;
    }
    if (!same(own(payload, "contributions_seq"), used)) {
      this.flag(seq, "contributions_seq", "is not the model's newest contributions entry");
    }
    const charter = this.minutes.current;
    const share = charter?.associationShare ?? { n: 1, d: 5 };
    let shares = own(this.contributions.get(used), "shares");
    if (!shares || (Array.isArray(shares) && shares.length === 0)) shares = {};
    if (!isObject(shares)) {
      this.flag(seq, "contributions", "cannot be used (the shares are not an object)");
      return;
    }
    const expected = distribute(
      revenue,
      licence.terms.rate,
      { n: BigInt(share.n), d: BigInt(share.d) },
      shares,
      this.owners,
    );
    if (typeof expected === "string") {
      this.flag(seq, "contributions", `cannot be used (${expected})`);
      return;
    }
    for (const field of ["royalty_yen", "association_yen", "rule"]) {
      if (!same(own(payload, field), expected[field])) this.flag(seq, field, "differs");
    }
    const recorded = own(payload, "payouts");
    if (!isObject(recorded)) {
      this.flag(seq, "payouts", "is not an object of member -> yen");
      return;
    }
    for (const member of new Set([...Object.keys(recorded), ...Object.keys(expected.payouts)])) {
      if (!same(own(recorded, member), own(expected.payouts, member))) {
        this.flag(seq, "payout", `differs for ${member}`);
      }
    }
  }

  /** Every report must have its distribution; every mismatch, as [seq, code, problem]. */
  finish() {
    for (const [key, [seq]] of this.reported) {
      if (!this.distributed.has(key)) {
        this.flag(seq, "distribution", `of ${key.replace("\u0000", " ")} is missing`);
      }
    }
    return this.mismatches.map(([seq, what, problem]) => [seq, royaltyCode(what), `${what} ${problem}`]);
  }
}

/** Every check of kumiai.domain.audit.audit, with its report as report_document prints it. */
export function audit(contents, pinned = new Map()) {
  const findings = new Map(); // where -> [{problem, code}]
  let anyFinding = false;
  const find = (where, problem, code) => {
    if (!findings.has(where)) findings.set(where, []);
    findings.get(where).push({ problem, code });
    anyFinding = true;
  };
  if (pinned.has(COORDINATOR) && pinned.get(COORDINATOR) !== contents.coordinatorKey) {
    find("export header", "the coordinator key differs from the pinned one", "coordinator-pinned");
  }
  const registry = new KeyRegistry(contents.coordinatorKey, pinned);
  const minutes = new Minutes(); // the board's record, every tally recomputed
  const payouts = new RoyaltyReplay(); // every royalty recomputed to the yen
  contents.leaves.forEach((leaf, position) => {
    const where = `entry ${position}`;
    const problem = (message, code) => find(where, message, code);
    let entry;
    try {
      entry = parseLeaf(leaf);
    } catch (error) {
      if (!(error instanceof Malformed)) throw error;
      problem(error.message, "malformed");
      return;
    }
    if (entry.seq !== position) {
      problem(
        `carries sequence number ${entry.seq}: an entry before it was deleted, ` +
          "or entries were reordered",
        "sequence",
      );
    }
    const key = entryKey(entry, registry, problem);
    minutes.read(entry, problem);
    payouts.read({ ...entry, seq: position });
    if (key === null) return;
    if (entry.doc.key_fingerprint !== fingerprint(key)) {
      problem(
        `signed with key ${entry.doc.key_fingerprint}, which was not ` +
          `${quoted(entry.actor)}'s registered key at that time`,
        "wrong-key",
      );
      return;
    }
    if (!signatureValid(key, entry.message, entry.doc.signature)) {
      problem("signature does not verify", "signature");
    }
  });

  for (const [seq, code, problem] of payouts.finish()) find(`entry ${seq}`, problem, code);

  const tree = new MerkleTree(contents.leaves.map((leaf) => leafHash(Buffer.from(leaf, "utf8"))));
  const heads = [...contents.heads].sort((a, b) => a.size - b.size); // stable, as Python's
  const headValid = new Map();
  for (const head of heads) {
    const where = `tree head ${head.size}`;
    const ok = signatureValid(contents.coordinatorKey, canonicalBytes(head.document), head.signature);
    headValid.set(where, headValid.get(where) || ok);
  }
  const bySize = new Map(heads.map((h) => [h.size, h]));
  const cosignatureSubjects = new Map();
  const cosignatureValid = new Map();
  for (const cosig of contents.cosignatures) {
    const where = `cosignature of head ${cosig.size} by ${cosig.witness}`;
    if (!cosignatureSubjects.has(where)) {
      cosignatureSubjects.set(where, { size: cosig.size, witness: cosig.witness });
    }
    const head = bySize.get(cosig.size);
    const witnessKeys = registry.history.get(cosig.witness) ?? [];
    if (head === undefined || witnessKeys.length === 0) {
      find(where, "names a head or witness that is not in the export", "unknown-head-or-witness");
      continue;
    }
    const message = canonicalBytes({
      type: COSIGN_TYPE,
      version: LEDGER_VERSION,
      witness: cosig.witness,
      head: head.document,
      head_signature: head.signature,
    });
    // A witness may have cosigned before rotating its key.
    const ok = witnessKeys.some((key) => signatureValid(key, message, cosig.signature));
    cosignatureValid.set(where, cosignatureValid.get(where) || ok);
  }
  for (const [where, ok] of [...headValid, ...cosignatureValid]) {
    if (!ok) find(where, "signature does not verify", "signature");
  }

  const seen = new Map();
  for (const head of heads) {
    const where = `tree head ${head.size}`;
    if (seen.has(head.size) && seen.get(head.size) !== head.root) {
      find(where, "two different roots for the same size: the coordinator forked its log", "fork");
    }
    seen.set(head.size, head.root);
    if (head.size > tree.size) {
      find(
        where,
        `claims ${head.size} entries; the export holds ${tree.size}: entries were deleted`,
        "too-large",
      );
    } else if (tree.root(head.size).toString("hex") !== head.root) {
      find(
        where,
        `root does not match the entries: an entry up to ${head.size} was changed, ` +
          "deleted or reordered",
        "root",
      );
    }
  }
  const pairs = [];
  for (let i = 0; i + 1 < heads.length; i++) {
    const [older, newer] = [heads[i], heads[i + 1]];
    if (older.size >= newer.size || newer.size > tree.size) continue;
    pairs.push([older.size, newer.size]);
    const proof = tree.consistencyProof(older.size, newer.size);
    const consistent = verifyConsistency(
      older.size,
      newer.size,
      Buffer.from(older.root, "hex"),
      Buffer.from(newer.root, "hex"),
      proof,
    );
    if (!consistent) {
      find(
        `tree heads ${older.size} and ${newer.size}`,
        "are not consistent with each other",
        "inconsistent",
      );
    }
  }

  const verdict = (where, subject) => {
    const problems = findings.get(where) ?? [];
    return {
      ...subject,
      ok: problems.length === 0,
      reason: problems.map((p) => p.problem).join("; ") || null,
      codes: [...new Set(problems.map((p) => p.code))].sort(),
    };
  };
  const sizes = [...new Set(heads.map((h) => h.size))];
  return {
    type: REPORT_TYPE,
    version: REPORT_VERSION,
    verifier: "kumiai verifiers/js",
    ok: !anyFinding,
    root: tree.root().toString("hex"),
    counts: {
      entries: contents.leaves.length,
      tree_heads: heads.length,
      cosignatures: contents.cosignatures.length,
    },
    export: verdict("export header", {}),
    entries: contents.leaves.map((_, seq) => verdict(`entry ${seq}`, { seq })),
    tree_heads: sizes.map((size) => verdict(`tree head ${size}`, { size })),
    consistency: pairs.map(([from, to]) => verdict(`tree heads ${from} and ${to}`, { from, to })),
    cosignatures: [...cosignatureSubjects].map(([where, subject]) => verdict(where, subject)),
  };
}

// -- command line ----------------------------------------------------------------------

const USAGE = "usage: node verify.mjs LEDGER.jsonl [KEYS.json]   (or --describe)";

function main(args) {
  if (args.length === 1 && args[0] === "--describe") {
    // What this verifier knows of the format, so a test can hold it to kumiai's.
    const versions = { [EXPORT_TYPE]: EXPORT_VERSION };
    for (const type of [ENTRY_TYPE, HEAD_TYPE, COSIGN_TYPE]) versions[type] = LEDGER_VERSION;
    process.stdout.write(`${JSON.stringify({ kinds: KINDS, versions }, null, 2)}\n`);
    return 0;
  }
  if (args.length < 1 || args.length > 2 || args.some((a) => a.startsWith("-"))) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  try {
    const report = audit(readExport(args[0]), readPinnedKeys(args[1]));
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    if (!report.ok) {
      const failing = [report.export, ...report.entries, ...report.tree_heads]
        .concat(report.consistency, report.cosignatures)
        .filter((v) => !v.ok).length;
      process.stderr.write(`verification failed for ${args[0]}: ${failing} failing item(s)\n`);
    }
    return report.ok ? 0 : 1;
  } catch (error) {
    if (!(error instanceof Unusable)) throw error;
    const report = { type: REPORT_TYPE, version: REPORT_VERSION, ok: false, error: error.message };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    process.stderr.write(`${error.message}\n`);
    return 2;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  process.exitCode = main(process.argv.slice(2));
}
