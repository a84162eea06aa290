"""A secure sum of whole-number vectors by pairwise masks (the core of SecAgg, Bonawitz et al.
2017), so the coordinator of an analysis sees only the sites' total.

Each participant makes an X25519 key pair for the job. Every pair of participants derives
the same secret (Diffie-Hellman, then HKDF-SHA256 bound to the job and the pair), expands it
with ChaCha20 into a mask vector, and one adds it while the other subtracts it, modulo 2^64.
Each masked vector alone is uniformly random; their sum is the sum of the true vectors.
There is no dropout recovery: a participant that does not answer after the keys were
exchanged fails the job (no figure is released), which a one-shot analysis can afford.
"""

import base64

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kumiai.domain.errors import InvalidInput

MODULUS = 1 << 64


def public_key_b64(key: X25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def _public(text: str, who: str) -> X25519PublicKey:
    try:
        return X25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except ValueError:
        raise InvalidInput(f"the masking key of {who!r} is not an X25519 public key") from None


def pair_mask(secret: bytes, job: str, first: str, second: str, length: int) -> list[int]:
    """The mask `first` and `second` share for `job`: `length` numbers modulo 2^64."""
    key = HKDF(
        hashes.SHA256(), 32, salt=None, info=f"kumiai-mask|{job}|{first}|{second}".encode()
    ).derive(secret)
    stream = Cipher(algorithms.ChaCha20(key, bytes(16)), mode=None).encryptor()
    data = stream.update(bytes(8 * length))
    return [int.from_bytes(data[8 * i : 8 * i + 8], "little") for i in range(length)]


def mask(
    vector: list[int], own: str, key: X25519PrivateKey, peers: dict[str, str], job: str
) -> list[int]:
    """`vector` (whole numbers, any sign) masked for the sum of every participant in `peers`
    (name -> public key, `own` included); the result modulo 2^64."""
    out = [v % MODULUS for v in vector]
    for name, public in sorted(peers.items()):
        if name == own:
            continue
        secret = key.exchange(_public(public, name))
        first, second = sorted((own, name))
        sign = 1 if own == first else -1
        for i, m in enumerate(pair_mask(secret, job, first, second, len(vector))):
            out[i] = (out[i] + sign * m) % MODULUS
    return out


def unmask(masked: list[list[int]]) -> list[int]:
    """The sum of the participants' true vectors, from all of their masked vectors.

    Every mask cancels only when every participant's vector is present; the sum is read as a
    signed number (two's complement), which holds while |sum| < 2^63.
    """
    if not masked:
        return []
    total = [sum(column) % MODULUS for column in zip(*masked, strict=True)]
    return [t - MODULUS if t >= MODULUS // 2 else t for t in total]
