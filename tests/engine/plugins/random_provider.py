"""A stand-in for the ``random`` provider: RandomId, RandomString, RandomPassword.

Upstream: pulumi/pulumi-random 4.21.4 (what ``pulumi-random==4.21.4`` asks the engine for)
bridges hashicorp/terraform-provider-random v3.9.0 (``provider/go.mod``:
``terraform-provider-random v1.3.2-0.20260513075824-f8d869dc98d9``, the v3.9.0 commit), a
Plugin Framework provider: the rules are its ``internal/provider/resource_id.go``,
``resource_string.go``, ``resource_password.go``, ``internal/random/string.go``,
``internal/planmodifiers/`` and ``internal/validators/``, planned and diffed the way the bridge
does it (``server.Schema``). pulumi-random's ``provider/resources.go`` adds no Pulumi-level
default, and no ``DeleteBeforeReplace``: a replacement is create-before-delete.

bcrypt: upstream hashes the first 72 bytes with ``bcrypt.DefaultCost`` (10). This stand-in uses
the ``bcrypt`` package when it is installed; it is not a dependency of this repository, and
without it the hash is computed by the pure-Python bcrypt below at cost 4 (``$2a$04$``: a real
bcrypt hash any bcrypt verifies, made 64 times faster than cost 10 so a test does not wait
seconds per password).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from typing import Any

from engine.plugins.server import (
    Attr,
    Call,
    CheckFailure,
    DiffResult,
    Props,
    Provider,
    ProviderError,
    Resource,
    Schema,
    Value,
    is_known,
    reveal,
    serve,
)

# ------------------------------------------------------------------------------- keepers


def keepers_require_replace(prior: Value, planned: Value) -> bool:
    """internal/planmodifiers/map/mapplanmodifiers.go RequiresReplaceIfValuesNotNull.

    (Only called when the planned value differs from the stored one.) A null stored map
    replaces only when the new map has a non-null value; otherwise a key that was stored but
    is gone, or whose value changed, replaces, and a new key whose value is null does not.
    """
    config = reveal(planned)
    state = reveal(prior)
    if state is None:
        # "only trigger replacement when the prior state (map) is null and when there are not
        # null map values"
        return isinstance(config, dict) and any(v is not None for v in config.values())
    state_map = state if isinstance(state, dict) else {}
    config_map = config if isinstance(config, dict) else {}
    for key, value in config_map.items():
        if key not in state_map and value is None:
            continue
        if key in state_map and state_map[key] == value:
            continue
        return True
    # "If the key doesn't exist in the config, but there is a state value, trigger
    # replacement."
    return any(key not in config_map for key in state_map)


def override_special_requires_replace(prior: Value, planned: Value) -> bool:
    """internal/planmodifiers/string/stringplanmodifier.go
    RequiresReplaceUnlessEmptyStringToNull: unknown does not replace; a non-null new value,
    or a null stored one, replaces; from "" to null does not."""
    if not is_known(planned):
        return False
    if reveal(planned) is not None or reveal(prior) is None:
        return True
    return reveal(prior) != ""


# --------------------------------------------------------------------------------- RandomId


class RandomId(Resource):
    """internal/provider/resource_id.go."""

    token = "random:index/randomId:RandomId"
    schema = Schema(
        [
            Attr("keepers", replace=keepers_require_replace),
            Attr("byteLength", required=True, replace=True),
            Attr("prefix", replace=True),
            *(
                Attr(n, config=False, computed=True, keep_state=True)
                for n in ("b64Url", "b64Std", "hex", "dec", "id")
            ),
        ]
    )

    def check(self, olds: Props, news: Props) -> tuple[Props, list[CheckFailure]]:
        return dict(news), self.schema.missing_required(news)

    def diff(self, id_: str, olds: Props, news: Props, old_inputs: Props) -> DiffResult:
        return self.schema.diff(olds, self.schema.plan(olds, news))

    def create(self, call: Call, news: Props, preview: bool) -> tuple[str, Props]:
        planned = self.schema.plan(None, news)
        if preview:
            return "", self.schema.outputs(planned, news)
        byte_length = reveal(planned["byteLength"])
        if not isinstance(byte_length, int):
            raise ProviderError(f"byteLength must be a number, not {byte_length!r}")
        data = secrets.token_bytes(byte_length)
        prefix = reveal(planned.get("prefix")) or ""
        # Create: id is the unpadded URL-safe base64 (no prefix); every form gets the prefix.
        id_ = base64.urlsafe_b64encode(data).decode().rstrip("=")
        planned.update(
            id=id_,
            b64Url=f"{prefix}{id_}",
            b64Std=f"{prefix}{base64.b64encode(data).decode()}",
            hex=f"{prefix}{data.hex()}",
            dec=f"{prefix}{int.from_bytes(data, 'big')}",
        )
        return id_, self.schema.outputs(planned, news)

    def update(
        self, call: Call, id_: str, olds: Props, news: Props, old_inputs: Props, preview: bool
    ) -> Props:
        # Update: "ensures the plan value is copied to the state".
        return self.schema.outputs(self.schema.plan(olds, news), news)


# ------------------------------------------------------------- RandomString, RandomPassword

NUMERIC = "0123456789"
LOWER = "abcdefghijklmnopqrstuvwxyz"
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
SPECIAL = "!@#$%&*()-_=+[]{}<>:?"
MINIMUMS = ("minUpper", "minLower", "minNumeric", "minSpecial")


def create_string(params: Mapping[str, Any]) -> str:
    """internal/random/string.go CreateString: the minimum of each class first, then the rest
    from the whole set, then shuffled (by sorting on random bytes)."""
    specials = params.get("overrideSpecial") or SPECIAL
    chars = ""
    if params["upper"]:
        chars += UPPER
    if params["lower"]:
        chars += LOWER
    if params["numeric"]:
        chars += NUMERIC
    if params["special"]:
        chars += specials
    if not chars:
        raise ProviderError("the character set specified is empty")
    result: list[str] = []
    for charset, minimum in (
        (NUMERIC, params["minNumeric"]),
        (LOWER, params["minLower"]),
        (UPPER, params["minUpper"]),
        (specials, params["minSpecial"]),
    ):
        result += [secrets.choice(charset) for _ in range(int(minimum))]
    result += [secrets.choice(chars) for _ in range(int(params["length"]) - len(result))]
    # "order" bytes sort the result: a random permutation.
    secrets.SystemRandom().shuffle(result)
    return "".join(result)


def _string_attrs(sensitive: bool) -> list[Attr]:
    # stringSchemaV3 / passwordSchemaV3: every configurable attribute but keepers and
    # override_special is RequiresReplace; the booleans default true and the minimums 0;
    # number and numeric are Computed, planned by NumberNumericAttributePlanModifier.
    return [
        Attr("keepers", replace=keepers_require_replace),
        Attr("length", required=True, replace=True),
        *(
            Attr(n, computed=True, default=True, replace=True)
            for n in ("special", "upper", "lower")
        ),
        Attr("number", computed=True, replace=True),
        Attr("numeric", computed=True, replace=True),
        *(Attr(n, computed=True, default=0, replace=True) for n in MINIMUMS),
        Attr("overrideSpecial", replace=override_special_requires_replace),
        Attr("result", config=False, computed=True, keep_state=True, sensitive=sensitive),
        Attr("id", config=False, computed=True, keep_state=True),
    ]


def _number_numeric(planned: Props, news: Props) -> None:
    """internal/planmodifiers/bool/boolplanmodifiers.go NumberNumericAttributePlanModifier:
    both unset: both true; one set: the other follows it (both set and different is refused
    in Check)."""
    number, numeric = reveal(news.get("number")), reveal(news.get("numeric"))
    if number is None and numeric is None:
        planned["number"] = planned["numeric"] = True
    elif number is None:
        planned["number"] = news["numeric"]
    elif numeric is None:
        planned["numeric"] = news["number"]


def _string_failures(news: Props) -> list[CheckFailure]:
    plain = {k: reveal(v) for k, v in news.items()}
    failures: list[CheckFailure] = []
    length = plain.get("length")
    # length: int64validator.AtLeast(1) and AtLeastSumOf(min_upper, min_lower, min_numeric,
    # min_special) (a validator waits while a value is unknown).
    if isinstance(length, int):
        if length < 1:
            failures.append(
                CheckFailure("length", f"Attribute length value must be at least 1, got: {length}")
            )
        minimums = [plain.get(m) for m in MINIMUMS]
        if all(isinstance(m, int) or m is None for m in minimums):
            total = sum(int(m) for m in minimums if isinstance(m, int))
            if length < total:
                failures.append(
                    CheckFailure(
                        "length",
                        f"Attribute length value must be at least sum of {', '.join(MINIMUMS)},"
                        f" got: {length}",
                    )
                )
    number, numeric = plain.get("number"), plain.get("numeric")
    if isinstance(number, bool) and isinstance(numeric, bool) and number != numeric:
        failures.append(
            CheckFailure(
                "number",
                "Number and numeric are both configured with"
                " different values: Number is deprecated, use numeric"
                " instead",
            )
        )
    # number and numeric: validators.AtLeastOneOfTrue(special, upper, lower): configured
    # false, with special, upper and lower all configured false.
    for key in ("number", "numeric"):
        if plain.get(key) is False and all(
            plain.get(k) is False for k in ("special", "upper", "lower")
        ):
            failures.append(
                CheckFailure(
                    key,
                    "At least one attribute out of"
                    " [special,upper,lower,numeric] must be specified as"
                    " true",
                )
            )
    return failures


class RandomString(Resource):
    """internal/provider/resource_string.go."""

    token = "random:index/randomString:RandomString"
    sensitive = False

    def __init__(self) -> None:
        attrs = _string_attrs(self.sensitive)
        if self.sensitive:
            attrs.append(
                Attr("bcryptHash", config=False, computed=True, keep_state=True, sensitive=True)
            )
        self.schema = Schema(attrs)

    def plan(self, prior: Props | None, news: Props) -> Props:
        planned = self.schema.plan(prior, news)
        _number_numeric(planned, news)
        return planned

    def check(self, olds: Props, news: Props) -> tuple[Props, list[CheckFailure]]:
        return dict(news), self.schema.missing_required(news) + _string_failures(news)

    def diff(self, id_: str, olds: Props, news: Props, old_inputs: Props) -> DiffResult:
        return self.schema.diff(olds, self.plan(olds, news))

    def generate(self, planned: Props) -> None:
        # Create: `plan.ID = result; plan.Result = result`.
        result = create_string({k: reveal(v) for k, v in planned.items()})
        planned.update(result=result, id=result)

    def create(self, call: Call, news: Props, preview: bool) -> tuple[str, Props]:
        planned = self.plan(None, news)
        if preview:
            return "", self.schema.outputs(planned, news)
        self.generate(planned)
        return str(reveal(planned["id"])), self.schema.outputs(planned, news)

    def update(
        self, call: Call, id_: str, olds: Props, news: Props, old_inputs: Props, preview: bool
    ) -> Props:
        return self.schema.outputs(self.plan(olds, news), news)


class RandomPassword(RandomString):
    """internal/provider/resource_password.go: RandomString's rules, ``result`` and
    ``bcrypt_hash`` Sensitive, the id always ``none``."""

    token = "random:index/randomPassword:RandomPassword"
    sensitive = True

    def generate(self, planned: Props) -> None:
        result = create_string({k: reveal(v) for k, v in planned.items()})
        # generateHash: bcrypt of the first 72 bytes; `plan.ID = types.StringValue("none")`.
        planned.update(result=result, bcryptHash=bcrypt_hash(result.encode()[:72]), id="none")


class RandomProvider(Provider):
    def __init__(self) -> None:
        super().__init__("random", "4.21.4", [RandomId(), RandomString(), RandomPassword()])


# ---------------------------------------------------------------------------------- bcrypt

FALLBACK_COST = 4
_STANDARD_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_BCRYPT_B64 = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_TO_BCRYPT = str.maketrans(_STANDARD_B64, _BCRYPT_B64)
_FROM_BCRYPT = str.maketrans(_BCRYPT_B64, _STANDARD_B64)


def bcrypt_hash(password: bytes, cost: int = 10) -> str:
    """A bcrypt hash: the ``bcrypt`` package at ``cost`` when installed, else the pure-Python
    one at :data:`FALLBACK_COST`."""
    try:
        import bcrypt  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return pure_bcrypt(password, secrets.token_bytes(16), FALLBACK_COST)
    hashed: bytes = bcrypt.hashpw(password, bcrypt.gensalt(rounds=cost, prefix=b"2a"))
    return hashed.decode()


def _pi_words(count: int) -> list[int]:
    """The first ``count`` 32-bit words of pi's fractional hexadecimal digits: Blowfish's
    initial P-array and S-boxes (Schneier 1993), from Machin's formula in integers."""
    bits = 32 * count + 64

    def arctan_inverse(x: int) -> int:
        total, term, n, sign = 0, (1 << bits) // x, 1, 1
        while term:
            total += sign * (term // n)
            term //= x * x
            n += 2
            sign = -sign
        return total

    pi = 16 * arctan_inverse(5) - 4 * arctan_inverse(239)
    fraction = (pi - (3 << bits)) >> 64
    return [(fraction >> (32 * (count - 1 - i))) & 0xFFFFFFFF for i in range(count)]


_PI: list[int] = []


def _words(data: bytes, count: int) -> list[int]:
    """``count`` big-endian words read from ``data`` cyclically (Blowfish's stream2word)."""
    stream = (data * (4 * count // len(data) + 1))[: 4 * count]
    return [int.from_bytes(stream[i : i + 4], "big") for i in range(0, 4 * count, 4)]


def pure_bcrypt(password: bytes, salt: bytes, cost: int) -> str:
    """bcrypt ``$2a$`` (Provos and Mazieres 1999; OpenBSD ``lib/libc/crypt/bcrypt.c``):
    EksBlowfishSetup with the password and its terminating NUL (72 bytes at most are used),
    then "OrpheanBeholderScryDoubt" enciphered 64 times; 23 bytes of it encoded."""
    if len(salt) != 16 or not 4 <= cost <= 31:
        raise ValueError("bcrypt needs a 16-byte salt and a cost of 4 to 31")
    if not _PI:
        _PI.extend(_pi_words(18 + 4 * 256))
    p = _PI[:18]
    s0, s1, s2, s3 = (_PI[18 + 256 * i : 18 + 256 * (i + 1)] for i in range(4))
    boxes = (s0, s1, s2, s3)
    mask = 0xFFFFFFFF

    def encipher(left: int, right: int) -> tuple[int, int]:
        for i in range(0, 16, 2):
            left ^= p[i]
            right ^= (
                ((s0[left >> 24] + s1[(left >> 16) & 0xFF]) & mask) ^ s2[(left >> 8) & 0xFF]
            ) + s3[left & 0xFF] & mask
            right ^= p[i + 1]
            left ^= (
                ((s0[right >> 24] + s1[(right >> 16) & 0xFF]) & mask) ^ s2[(right >> 8) & 0xFF]
            ) + s3[right & 0xFF] & mask
        return right ^ p[17], left ^ p[16]

    key_words = _words(password[:72] + b"\x00", 18)
    salt_words = _words(salt, 4)
    salt_as_key = _words(salt, 18)

    def expand(key: list[int], salted: bool) -> None:
        for i in range(18):
            p[i] ^= key[i]
        left = right = 0
        position = 0
        for block in range(9 + 4 * 128):
            if salted:
                left ^= salt_words[position]
                right ^= salt_words[position + 1]
                position ^= 2
            left, right = encipher(left, right)
            if block < 9:
                p[2 * block], p[2 * block + 1] = left, right
            else:
                box, offset = divmod(2 * (block - 9), 256)
                boxes[box][offset], boxes[box][offset + 1] = left, right

    expand(key_words, True)
    for _ in range(1 << cost):
        expand(key_words, False)
        expand(salt_as_key, False)
    text = _words(b"OrpheanBeholderScryDoubt", 6)
    for _ in range(64):
        for j in range(0, 6, 2):
            text[j], text[j + 1] = encipher(text[j], text[j + 1])
    digest = b"".join(word.to_bytes(4, "big") for word in text)[:23]
    return f"$2a${cost:02d}${_bcrypt_b64(salt)}{_bcrypt_b64(digest)}"


def _bcrypt_b64(data: bytes) -> str:
    """bcrypt's base64: base64 in its own alphabet, unpadded (16 bytes -> 22 characters)."""
    return base64.b64encode(data).decode().rstrip("=").translate(_TO_BCRYPT)


def bcrypt_salt(encoded: str) -> bytes:
    """The 16 bytes of a 22-character bcrypt salt."""
    return base64.b64decode(encoded.translate(_FROM_BCRYPT) + "==")


if __name__ == "__main__":
    serve(RandomProvider())
