"""A family of small tools (text, numbers, lists, dates, units) the curriculum teaches.

Each tool is a definition in exactly the JSON form toolsmith validates
({"name", "description", "parameters", "implementation", "sandbox": true}), test
cases with hand-written expected results, paraphrases of a request for it, and a
way to ask for a call of it. Implementations are RestrictedPython-compatible:
no imports, no names starting with an underscore, no str.format.
"""
from __future__ import annotations

import json
import random
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

TYPES = {"s": "string", "i": "integer", "n": "number", "a": "array", "b": "boolean"}

REQUEST = {
    "train": (
        "can you make a tool that {p}?",
        "I need a tool that {p}",
        "please build a tool which {p}",
        "write me a tool that {p}",
        "make a tool that {p}",
        "could you create a tool that {p}?",
        "I want a tool that {p}",
    ),
    "heldout": (
        "could you put together a tool that {p}?",
        "I would like a tool which {p}",
    ),
}


@dataclass
class Tool:
    """One tool of the family; ``params`` maps a parameter to (type letter, description)."""
    name: str
    description: str
    params: dict[str, tuple[str, str]]
    source: str
    tests: list[tuple[dict, Any]]
    phrases: tuple[str, ...]          # "reverses a piece of text"; the last one is held out
    call: str                          # a request to use it, with {param} slots
    sample: Callable[[random.Random], dict]
    item_type: str = "n"              # element type of array parameters
    family: str = ""
    extra: dict = field(default_factory=dict)

    def definition(self) -> dict:
        """The definition as toolsmith's JSON form."""
        props = {}
        for pname, (t, desc) in self.params.items():
            schema: dict[str, Any] = {"type": TYPES[t], "description": desc}
            if t == "a":
                schema["items"] = {"type": TYPES[self.item_type]}
            props[pname] = schema
        return {"name": self.name, "description": self.description,
                "parameters": {"type": "object", "properties": props, "required": list(self.params),
                               "additionalProperties": False},
                "implementation": textwrap.dedent(self.source).strip() + "\n",
                "sandbox": True}


# ---- samplers ----------------------------------------------------------------------------------
WORDS = ("apple river stone light paper orange window garden silver music planet level radar "
         "rotor kayak hello world table chair green quick brown fox jumps lazy dog").split()


def _word(r):
    """A word from the list, or (40%) a made-up one: a call must copy its argument, not guess it."""
    if r.random() < 0.6:
        return r.choice(WORDS)
    return "".join(r.choice("bcdfghklmnprstvz" if i % 2 == 0 else "aeiou") for i in range(r.randint(3, 6)))


def _text(r): return " ".join(_word(r) for _ in range(r.randint(2, 4)))
def _int(r, lo=2, hi=99): return r.randint(lo, hi)
def _nums(r): return [r.randint(1, 50) for _ in range(r.randint(3, 6))]
def _date(r): return f"{r.randint(1990, 2030)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}"
def _dec(r): return round(r.uniform(1, 100), 1)


def _t(name, fam, desc, params, src, tests, phrases, call, sample, item="n"):
    return Tool(name, desc, params, src, tests, tuple(phrases), call, sample, item, fam)


_DAYNUM = """
        parts = {d}.split("-")
        y = int(parts[0])
        m = int(parts[1])
        d = int(parts[2])
        if m <= 2:
            y = y - 1
        era = y // 400
        yoe = y - era * 400
        doy = (153 * ((m + 9) % 12) + 2) // 5 + d - 1
        doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
"""

TOOLS: list[Tool] = [
    # ---- text ----
    _t("reverse_string", "text", "Reverse a piece of text.", {"text": ("s", "the text to reverse")},
       "def reverse_string(text):\n    return text[::-1]",
       [({"text": "hello"}, "olleh"), ({"text": "ab c"}, "c ba")],
       ["reverses a piece of text", "turns a string backwards",
        "flips a string so the last character comes first", "spells a piece of text backwards",
        "mirrors the characters of a string", "returns a string with its letters back to front",
        "reverses the characters in a sentence", "writes text in reverse order"],
       "reverse the text '{text}'", lambda r: {"text": _text(r)}),
    _t("to_upper", "text", "Convert text to upper case.", {"text": ("s", "the text")},
       "def to_upper(text):\n    return text.upper()",
       [({"text": "abc"}, "ABC"), ({"text": "Hi 2"}, "HI 2")],
       ["converts text to upper case", "makes every letter a capital",
        "uppercases every letter of a sentence", "turns all letters of a string into upper case",
        "changes each letter of a word to its upper case form",
        "returns a phrase written entirely in block letters", "puts a whole sentence in upper case",
        "shouts a string in capitals"],
       "make '{text}' upper case", lambda r: {"text": _text(r)}),
    _t("to_lower", "text", "Convert text to lower case.", {"text": ("s", "the text")},
       "def to_lower(text):\n    return text.lower()",
       [({"text": "ABC"}, "abc"), ({"text": "Hi There"}, "hi there")],
       ["converts text to lower case", "makes all letters small",
        "puts every letter of a sentence in lower case", "turns uppercase letters into small ones",
        "converts a phrase so no letter is upper case",
        "returns a word with all its letters in lower case",
        "changes every character of a text to lower case", "lowercases a string"],
       "make '{text}' lower case", lambda r: {"text": _text(r).upper()}),
    _t("title_case", "text", "Capitalise the first letter of every word.", {"text": ("s", "the text")},
       "def title_case(text):\n    return ' '.join(w[:1].upper() + w[1:] for w in text.split(' '))",
       [({"text": "hello world"}, "Hello World"), ({"text": "a b"}, "A B")],
       ["capitalises every word of a text", "puts text in title case",
        "capitalises the initial letter of each word", "converts a sentence to title case",
        "uppercases the opening letter of every word in a phrase",
        "turns a heading into title case", "gives every word of a string an uppercase initial",
        "makes each word start with a capital"],
       "put '{text}' in title case", lambda r: {"text": _text(r)}),
    _t("count_vowels", "text", "Count the vowels in a text.", {"text": ("s", "the text")},
       "def count_vowels(text):\n    return sum(1 for c in text.lower() if c in 'aeiou')",
       [({"text": "hello"}, 2), ({"text": "sky"}, 0), ({"text": "AEIOU"}, 5)],
       ["counts the vowels in a text", "tells how many vowels a string has",
        "counts a e i o and u in a string", "tallies the vowels of a sentence",
        "gives how many vowels appear in a word", "works out the vowel count of a phrase",
        "reports how many vowels some text contains", "returns the number of vowels"],
       "how many vowels are in '{text}'?", lambda r: {"text": _text(r)}),
    _t("count_words", "text", "Count the words in a text.", {"text": ("s", "the text")},
       "def count_words(text):\n    return len(text.split())",
       [({"text": "one two three"}, 3), ({"text": ""}, 0)],
       ["counts the words in a text", "tells how many words a sentence has",
        "tallies the words of a sentence", "tells how many words a paragraph contains",
        "works out how many words are in a phrase", "gives the length of a sentence in words",
        "finds how many words make up a string", "returns a word count"],
       "how many words are in '{text}'?", lambda r: {"text": _text(r)}),
    _t("is_palindrome", "text", "Tell whether a text reads the same backwards, ignoring case and spaces.",
       {"text": ("s", "the text")},
       "def is_palindrome(text):\n    letters = [c for c in text.lower() if c.isalnum()]\n"
       "    return letters == letters[::-1]",
       [({"text": "Race car"}, True), ({"text": "hello"}, False)],
       ["checks whether a word is a palindrome", "tells if text reads the same backwards",
        "checks if a string is spelled the same both ways", "tells whether a word is a palindrome",
        "returns true when text is identical to its reverse",
        "decides if a phrase reads identically forwards and backwards",
        "tests whether a string equals itself reversed", "detects palindromes"],
       "is '{text}' a palindrome?", lambda r: {"text": _word(r)}),
    _t("remove_spaces", "text", "Remove every space from a text.", {"text": ("s", "the text")},
       "def remove_spaces(text):\n    return text.replace(' ', '')",
       [({"text": "a b c"}, "abc"), ({"text": "no"}, "no")],
       ["removes all spaces from a text", "deletes the blanks in a string",
        "strips every space from a sentence", "deletes whitespace between the words of a string",
        "returns text with no blanks left in it",
        "joins the words of a phrase by dropping the spaces", "removes the gaps between words",
        "squeezes out spaces"],
       "remove the spaces from '{text}'", lambda r: {"text": _text(r)}),
    _t("char_count", "text", "Count the characters in a text.", {"text": ("s", "the text")},
       "def char_count(text):\n    return len(text)",
       [({"text": "hello"}, 5), ({"text": ""}, 0)],
       ["counts the characters in a text", "measures the length of a string",
        "returns the number of characters in a string", "gives the length of a word in characters",
        "works out the character count of a sentence",
        "computes the size of a string in letters and spaces",
        "tallies every character of a phrase", "tells how long a text is"],
       "how many characters are in '{text}'?", lambda r: {"text": _text(r)}),
    _t("repeat_text", "text", "Repeat a text a number of times.",
       {"text": ("s", "the text"), "times": ("i", "how many times")},
       "def repeat_text(text, times):\n    return text * times",
       [({"text": "ab", "times": 3}, "ababab"), ({"text": "x", "times": 0}, "")],
       ["repeats a text several times", "writes a string n times in a row",
        "repeats a string n times", "concatenates several copies of a text",
        "makes a string appear n times one after another", "echoes a word over and over",
        "returns a phrase copied several times in a row", "duplicates text a given number of times"],
       "repeat '{text}' {times} times", lambda r: {"text": _word(r), "times": _int(r, 2, 4)}),
    _t("first_word", "text", "Return the first word of a text.", {"text": ("s", "the text")},
       "def first_word(text):\n    words = text.split()\n    return words[0] if words else ''",
       [({"text": "hello big world"}, "hello"), ({"text": ""}, "")],
       ["returns the first word of a sentence", "picks the opening word of a text",
        "takes the opening word of a string", "extracts the word at the beginning of a sentence",
        "returns whatever word comes first in a phrase", "pulls out the leading word of a text",
        "finds the initial word in a line of text", "gives the first word"],
       "what is the first word of '{text}'?", lambda r: {"text": _text(r)}),
    _t("last_word", "text", "Return the last word of a text.", {"text": ("s", "the text")},
       "def last_word(text):\n    words = text.split()\n    return words[-1] if words else ''",
       [({"text": "hello big world"}, "world"), ({"text": ""}, "")],
       ["returns the last word of a sentence", "picks the final word of a text",
        "takes the final word of a string", "extracts the word at the end of a sentence",
        "returns whatever word comes last in a phrase", "pulls out the closing word of a text",
        "finds the trailing word in a line of text", "gives the last word"],
       "what is the last word of '{text}'?", lambda r: {"text": _text(r)}),
    _t("acronym", "text", "Make an acronym from the first letters of the words.", {"text": ("s", "the text")},
       "def acronym(text):\n    return ''.join(w[0].upper() for w in text.split())",
       [({"text": "portable network graphics"}, "PNG"), ({"text": "as soon as possible"}, "ASAP")],
       ["makes an acronym from a phrase", "builds initials from the words of a text",
        "forms an acronym out of a title", "joins the initials of each word in a sentence",
        "turns portable network graphics into png",
        "takes the initial of every word and glues them together",
        "creates an acronym from several words", "abbreviates a phrase to its first letters"],
       "make an acronym of '{text}'", lambda r: {"text": _text(r)}),
    _t("replace_word", "text", "Replace every occurrence of a word in a text.",
       {"text": ("s", "the text"), "old": ("s", "the word to replace"), "new": ("s", "the replacement")},
       "def replace_word(text, old, new):\n    return text.replace(old, new)",
       [({"text": "a cat and a cat", "old": "cat", "new": "dog"}, "a dog and a dog"),
        ({"text": "abc", "old": "x", "new": "y"}, "abc")],
       ["replaces one word with another in a text", "swaps a word for another word",
        "replaces every occurrence of a word in a sentence",
        "exchanges one word for a new one in a string",
        "changes a given word into a different word",
        "finds a word in a text and puts another in its place",
        "rewrites a phrase with one word switched for another", "substitutes words in a string"],
       "in '{text}' replace '{old}' with '{new}'",
       lambda r: (lambda t: {"text": t, "old": t.split()[0], "new": _word(r)})(_text(r))),
    _t("truncate_text", "text", "Cut a text down to at most a given number of characters.",
       {"text": ("s", "the text"), "length": ("i", "the maximum length")},
       "def truncate_text(text, length):\n    return text[:length]",
       [({"text": "hello world", "length": 5}, "hello"), ({"text": "hi", "length": 5}, "hi")],
       ["cuts a text to a maximum length", "shortens a string to n characters",
        "cuts off a string after n characters", "keeps only the first n characters of a text",
        "clips a sentence to a length limit",
        "trims a paragraph down to a maximum number of characters",
        "chops a phrase so it fits a fixed length", "truncates text"],
       "cut '{text}' to {length} characters", lambda r: {"text": _text(r), "length": _int(r, 2, 9)}),
    _t("slugify", "text", "Turn a text into a lowercase slug joined by dashes.", {"text": ("s", "the text")},
       "def slugify(text):\n    words = ''.join(c if c.isalnum() else ' ' for c in text.lower()).split()\n"
       "    return '-'.join(words)",
       [({"text": "Hello, World!"}, "hello-world"), ({"text": "  A  b "}, "a-b")],
       ["turns a title into a url slug", "makes a dashed lowercase slug from text",
        "converts a blog post title into a slug", "replaces spaces with hyphens to make a url slug",
        "builds a url friendly slug from a sentence", "makes a web address slug out of a headline",
        "joins the lowercase words of a title with dashes", "slugifies a string"],
       "make a slug of '{text}'", lambda r: {"text": _text(r).title()}),
    _t("count_char", "text", "Count how often a character occurs in a text.",
       {"text": ("s", "the text"), "char": ("s", "the character")},
       "def count_char(text, char):\n    return text.count(char)",
       [({"text": "banana", "char": "a"}, 3), ({"text": "xyz", "char": "a"}, 0)],
       ["counts how often a letter appears in a text", "tells how many times a character occurs",
        "tallies the occurrences of a given letter in a sentence",
        "counts how many times a letter shows up in a word",
        "finds how often a specific character appears in text",
        "returns the number of times a symbol occurs in a phrase",
        "counts appearances of a single letter in a string", "counts one character in a string"],
       "how many times does '{char}' occur in '{text}'?",
       lambda r: (lambda t: {"text": t, "char": r.choice(t.replace(" ", ""))})(_text(r))),
    # ---- numbers ----
    _t("add_numbers", "numbers", "Add two numbers.", {"a": ("n", "the first number"), "b": ("n", "the second number")},
       "def add_numbers(a, b):\n    return a + b",
       [({"a": 2, "b": 3}, 5), ({"a": -1.5, "b": 1.5}, 0)],
       ["adds two numbers", "sums a pair of numbers", "adds a and b together",
        "computes the sum of two values", "works out a plus b",
        "gives the sum of a pair of figures", "calculates the result of adding two integers",
        "returns the total of two numbers"],
       "what is {a} plus {b}?", lambda r: {"a": _int(r, 1, 999), "b": _int(r, 1, 999)}),
    _t("subtract_numbers", "numbers", "Subtract the second number from the first.",
       {"a": ("n", "the number to subtract from"), "b": ("n", "the number to subtract")},
       "def subtract_numbers(a, b):\n    return a - b",
       [({"a": 5, "b": 3}, 2), ({"a": 1, "b": 4}, -3)],
       ["subtracts one number from another", "computes the difference of two numbers",
        "works out the first number minus the second", "subtracts the second value from the first",
        "calculates the result of subtracting two integers", "deducts one figure from another",
        "gives the difference between two numbers", "takes b away from a"],
       "what is {a} minus {b}?", lambda r: {"a": _int(r, 1, 999), "b": _int(r, 1, 999)}),
    _t("multiply_numbers", "numbers", "Multiply two numbers.",
       {"a": ("n", "the first factor"), "b": ("n", "the second factor")},
       "def multiply_numbers(a, b):\n    return a * b",
       [({"a": 6, "b": 7}, 42), ({"a": -2, "b": 0.5}, -1)],
       ["multiplies two numbers", "computes the product of two numbers",
        "multiplies a pair of integers together", "works out the product of two values",
        "calculates one number multiplied by another",
        "gives the result of multiplying two figures", "computes x multiplied by y",
        "returns a times b"],
       "what is {a} times {b}?", lambda r: {"a": _int(r, 2, 99), "b": _int(r, 2, 99)}),
    _t("divide_numbers", "numbers", "Divide the first number by the second, rounded to 4 places.",
       {"a": ("n", "the dividend"), "b": ("n", "the divisor, not zero")},
       "def divide_numbers(a, b):\n    if b == 0:\n        return None\n    return round(a / b, 4)",
       [({"a": 10, "b": 4}, 2.5), ({"a": 1, "b": 3}, 0.3333), ({"a": 1, "b": 0}, None)],
       ["divides one number by another", "computes a quotient of two numbers",
        "works out the quotient of two values", "divides the first number by the second",
        "calculates x over y", "finds the ratio of two numbers",
        "computes how many times one number goes into another", "returns a divided by b"],
       "what is {a} divided by {b}?", lambda r: {"a": _int(r, 1, 999), "b": _int(r, 1, 20)}),
    _t("power_of", "numbers", "Raise a base to an integer exponent.",
       {"base": ("n", "the base"), "exponent": ("i", "the exponent")},
       "def power_of(base, exponent):\n    return base ** exponent",
       [({"base": 2, "exponent": 10}, 1024), ({"base": 5, "exponent": 0}, 1)],
       ["raises a number to a power", "computes base to the exponent",
        "raises a base to an exponent", "computes x to the power of y",
        "works out a number raised to some exponent", "calculates exponentiation of two integers",
        "multiplies a base by itself exponent times", "returns a power of a number"],
       "what is {base} to the power of {exponent}?", lambda r: {"base": _int(r, 2, 9), "exponent": _int(r, 2, 5)}),
    _t("factorial", "numbers", "The factorial of a non-negative integer.", {"n": ("i", "the integer")},
       "def factorial(n):\n    result = 1\n    for k in range(2, n + 1):\n        result = result * k\n    return result",
       [({"n": 5}, 120), ({"n": 0}, 1)],
       ["computes the factorial of a number", "multiplies all integers up to n",
        "works out the factorial of an integer", "calculates n times n minus one down to one",
        "multiplies every whole number from one up to n",
        "gives the product of the integers from 1 to n",
        "finds the factorial of a positive whole number", "returns n factorial"],
       "what is the factorial of {n}?", lambda r: {"n": _int(r, 2, 9)}),
    _t("is_prime", "numbers", "Tell whether an integer is prime.", {"n": ("i", "the integer")},
       "def is_prime(n):\n    if n < 2:\n        return False\n    k = 2\n    while k * k <= n:\n"
       "        if n % k == 0:\n            return False\n        k = k + 1\n    return True",
       [({"n": 7}, True), ({"n": 9}, False), ({"n": 1}, False)],
       ["checks whether a number is prime", "tells if an integer is a prime",
        "decides if a number has no divisors besides one and itself",
        "checks if an integer is prime", "tells whether a whole number is a prime number",
        "returns true for prime numbers and false otherwise",
        "determines if a given number is prime", "tests numbers for primality"],
       "is {n} a prime number?", lambda r: {"n": _int(r, 2, 199)}),
    _t("gcd_of", "numbers", "The greatest common divisor of two integers.",
       {"a": ("i", "the first integer"), "b": ("i", "the second integer")},
       "def gcd_of(a, b):\n    while b:\n        a, b = b, a % b\n    return abs(a)",
       [({"a": 12, "b": 18}, 6), ({"a": 7, "b": 5}, 1)],
       ["finds the greatest common divisor of two numbers", "computes the gcd of two integers",
        "works out the greatest common divisor",
        "calculates the highest common factor of two values", "finds the gcd of a pair of numbers",
        "computes the greatest shared factor of two integers", "gives the hcf of two whole numbers",
        "returns the largest number dividing both"],
       "what is the gcd of {a} and {b}?", lambda r: {"a": _int(r, 2, 200), "b": _int(r, 2, 200)}),
    _t("lcm_of", "numbers", "The least common multiple of two positive integers.",
       {"a": ("i", "the first integer"), "b": ("i", "the second integer")},
       "def lcm_of(a, b):\n    x, y = a, b\n    while y:\n        x, y = y, x % y\n    return a * b // x",
       [({"a": 4, "b": 6}, 12), ({"a": 3, "b": 5}, 15)],
       ["finds the least common multiple of two numbers", "computes the lcm of two integers",
        "works out the least common multiple", "finds the lcm of a pair of numbers",
        "gives the least number that two integers both divide into",
        "computes the least shared multiple of two whole numbers",
        "calculates the lcm of two values", "returns the smallest common multiple"],
       "what is the lcm of {a} and {b}?", lambda r: {"a": _int(r, 2, 30), "b": _int(r, 2, 30)}),
    _t("fibonacci", "numbers", "The n-th Fibonacci number (fibonacci(0) = 0).", {"n": ("i", "the index")},
       "def fibonacci(n):\n    a, b = 0, 1\n    for k in range(n):\n        a, b = b, a + b\n    return a",
       [({"n": 10}, 55), ({"n": 0}, 0), ({"n": 1}, 1)],
       ["returns the n-th fibonacci number", "computes fibonacci numbers",
        "calculates the n-th number in the fibonacci series",
        "works out a fibonacci number by position", "finds fibonacci number n",
        "computes the fibonacci value at index n",
        "returns the nth element of the series 0 1 1 2 3 5",
        "gives a term of the fibonacci sequence"],
       "what is fibonacci number {n}?", lambda r: {"n": _int(r, 3, 30)}),
    _t("percentage", "numbers", "What percent the part is of the whole, rounded to 2 places.",
       {"part": ("n", "the part"), "whole": ("n", "the whole, not zero")},
       "def percentage(part, whole):\n    return round(100 * part / whole, 2)",
       [({"part": 1, "whole": 4}, 25), ({"part": 1, "whole": 3}, 33.33)],
       ["computes what percent one number is of another",
        "turns a part and a whole into a percentage", "works out a part as a percent of a whole",
        "calculates the percentage one value makes of another",
        "expresses a part of a whole out of one hundred", "gives x as a percent of y",
        "finds what share of a whole a part is in percent", "returns a percentage"],
       "what percent of {whole} is {part}?", lambda r: {"part": _int(r, 1, 50), "whole": _int(r, 51, 200)}),
    _t("square_root", "numbers", "The square root of a non-negative number, rounded to 4 places.",
       {"x": ("n", "the number")},
       "def square_root(x):\n    return round(x ** 0.5, 4)",
       [({"x": 16}, 4), ({"x": 2}, 1.4142)],
       ["computes the square root of a number", "finds a square root",
        "calculates the square root of a value", "works out which number squared gives the input",
        "takes the square root of a positive number", "gives the square root of an integer",
        "finds the number that multiplied by itself yields the input", "returns the root of x"],
       "what is the square root of {x}?", lambda r: {"x": _int(r, 2, 400)}),
    _t("is_even", "numbers", "Tell whether an integer is even.", {"n": ("i", "the integer")},
       "def is_even(n):\n    return n % 2 == 0",
       [({"n": 4}, True), ({"n": 7}, False)],
       ["checks whether a number is even", "tells if an integer is divisible by two",
        "checks if an integer is even or odd", "tells whether a number divides evenly by 2",
        "returns true for even numbers", "decides whether a whole number is even",
        "determines if a number has no remainder when halved", "tests parity"],
       "is {n} even?", lambda r: {"n": _int(r, 1, 999)}),
    _t("digit_sum", "numbers", "The sum of the decimal digits of an integer.", {"n": ("i", "the integer")},
       "def digit_sum(n):\n    return sum(int(c) for c in str(abs(n)))",
       [({"n": 1234}, 10), ({"n": -56}, 11)],
       ["adds up the digits of a number", "computes a digit sum",
        "adds together every digit of an integer", "works out the digit sum of a number",
        "computes the sum of the digits in an integer",
        "returns the sum of each digit of a whole number", "adds the individual digits of a figure",
        "sums the decimal digits"],
       "what is the digit sum of {n}?", lambda r: {"n": _int(r, 10, 99999)}),
    # ---- lists ----
    _t("sum_list", "lists", "Add up a list of numbers.", {"numbers": ("a", "the numbers")},
       "def sum_list(numbers):\n    return sum(numbers)",
       [({"numbers": [1, 2, 3]}, 6), ({"numbers": []}, 0)],
       ["adds up a list of numbers", "totals the numbers in a list",
        "computes the sum of a list of numbers", "adds all the values in a list together",
        "works out the sum of an array of figures", "adds together all items of a number list",
        "returns the sum of every element in a list", "sums a list"],
       "add up {numbers}", lambda r: {"numbers": _nums(r)}),
    _t("average", "lists", "The mean of a non-empty list of numbers, rounded to 4 places.",
       {"numbers": ("a", "the numbers")},
       "def average(numbers):\n    return round(sum(numbers) / len(numbers), 4)",
       [({"numbers": [1, 2, 3, 4]}, 2.5), ({"numbers": [5]}, 5)],
       ["computes the average of a list of numbers", "returns the mean of some numbers",
        "finds the arithmetic mean of a list", "works out the mean value of some numbers",
        "divides the sum of a list by its length", "calculates the average of an array of figures",
        "gives the mean of a list of values", "averages a list"],
       "what is the average of {numbers}?", lambda r: {"numbers": _nums(r)}),
    _t("median", "lists", "The median of a non-empty list of numbers.", {"numbers": ("a", "the numbers")},
       "def median(numbers):\n    s = sorted(numbers)\n    n = len(s)\n    if n % 2 == 1:\n        return s[n // 2]\n"
       "    return (s[n // 2 - 1] + s[n // 2]) / 2",
       [({"numbers": [3, 1, 2]}, 2), ({"numbers": [4, 1, 3, 2]}, 2.5)],
       ["finds the median of a list of numbers", "returns the middle value of some numbers",
        "works out the median of some numbers", "calculates the middle number of a sorted list",
        "gives the median value of an array of figures", "finds the central value of a list",
        "returns the median of a list of values", "computes a median"],
       "what is the median of {numbers}?", lambda r: {"numbers": _nums(r)}),
    _t("largest", "lists", "The largest number of a non-empty list.", {"numbers": ("a", "the numbers")},
       "def largest(numbers):\n    return max(numbers)",
       [({"numbers": [3, 9, 2]}, 9), ({"numbers": [-1, -5]}, -1)],
       ["finds the largest number in a list", "returns the maximum of some numbers",
        "finds the maximum value in a list", "returns the highest of some numbers",
        "works out which number in a list is greatest", "gets the largest element of an array",
        "selects the max from a list of figures", "picks the biggest value"],
       "what is the largest of {numbers}?", lambda r: {"numbers": _nums(r)}),
    _t("smallest", "lists", "The smallest number of a non-empty list.", {"numbers": ("a", "the numbers")},
       "def smallest(numbers):\n    return min(numbers)",
       [({"numbers": [3, 9, 2]}, 2), ({"numbers": [-1, -5]}, -5)],
       ["finds the smallest number in a list", "returns the minimum of some numbers",
        "finds the minimum value in a list", "returns the least of some numbers",
        "works out which number in a list is smallest", "gets the smallest element of an array",
        "selects the min from a list of figures", "picks the lowest value"],
       "what is the smallest of {numbers}?", lambda r: {"numbers": _nums(r)}),
    _t("sort_ascending", "lists", "Sort numbers in ascending order.", {"numbers": ("a", "the numbers")},
       "def sort_ascending(numbers):\n    return sorted(numbers)",
       [({"numbers": [3, 1, 2]}, [1, 2, 3]), ({"numbers": []}, [])],
       ["sorts a list of numbers", "puts numbers in ascending order",
        "sorts numbers in ascending order", "arranges a list of numbers in increasing order",
        "returns a list sorted in ascending order", "puts figures in rising order",
        "sorts an array of integers so they go up", "orders a list from small to large"],
       "sort {numbers}", lambda r: {"numbers": _nums(r)}),
    _t("unique_items", "lists", "Remove duplicates from a list of words, keeping the first occurrence.",
       {"items": ("a", "the words")},
       "def unique_items(items):\n    seen = []\n    for item in items:\n        if item not in seen:\n"
       "            seen.append(item)\n    return seen",
       [({"items": ["a", "b", "a"]}, ["a", "b"]), ({"items": []}, [])],
       ["removes duplicate words from a list", "keeps only unique items",
        "drops repeated words from a list", "removes duplicate entries from a list of words",
        "keeps each item only once", "returns the distinct items of a list",
        "filters out repeats so every word appears once", "deduplicates a list"],
       "remove the duplicates from {items}",
       lambda r: {"items": [r.choice(WORDS[:6]) for _ in range(r.randint(3, 6))]}, item="s"),
    _t("count_items", "lists", "Count how often a word occurs in a list.",
       {"items": ("a", "the words"), "item": ("s", "the word to count")},
       "def count_items(items, item):\n    return items.count(item)",
       [({"items": ["a", "b", "a"], "item": "a"}, 2), ({"items": [], "item": "x"}, 0)],
       ["counts how often a word occurs in a list", "tells how many times an item appears",
        "tallies the occurrences of a word in a list",
        "counts how many list entries equal a given word",
        "returns the number of times a value shows up in a list",
        "finds how often an item occurs in a word list",
        "works out the frequency of a word in a list", "counts matching items"],
       "how often does '{item}' occur in {items}?",
       lambda r: (lambda xs: {"items": xs, "item": r.choice(xs)})([r.choice(WORDS[:5]) for _ in range(5)]), item="s"),
    _t("reverse_list", "lists", "Reverse the order of a list of words.", {"items": ("a", "the words")},
       "def reverse_list(items):\n    return items[::-1]",
       [({"items": ["a", "b", "c"]}, ["c", "b", "a"]), ({"items": []}, [])],
       ["reverses the order of a list", "turns a list backwards", "reverses a list of words",
        "flips the order of the elements in an array",
        "puts the entries of a list the other way round", "mirrors a list of values",
        "gives back a list with its elements flipped", "returns the items last to first"],
       "reverse the list {items}", lambda r: {"items": [_word(r) for _ in range(3)]}, item="s"),
    _t("product_list", "lists", "Multiply all numbers of a list together.", {"numbers": ("a", "the numbers")},
       "def product_list(numbers):\n    result = 1\n    for x in numbers:\n        result = result * x\n    return result",
       [({"numbers": [2, 3, 4]}, 24), ({"numbers": []}, 1)],
       ["multiplies all numbers in a list", "computes the product of a list",
        "multiplies together every value in a list", "works out the product of an array of figures",
        "calculates the product of all list elements",
        "gives the result of multiplying a list of numbers",
        "multiplies the entries of a number list", "returns the product of some numbers"],
       "multiply together {numbers}", lambda r: {"numbers": [r.randint(1, 9) for _ in range(3)]}),
    _t("range_list", "lists", "The integers from start up to but not including stop.",
       {"start": ("i", "the first integer"), "stop": ("i", "the end, excluded")},
       "def range_list(start, stop):\n    return list(range(start, stop))",
       [({"start": 2, "stop": 5}, [2, 3, 4]), ({"start": 3, "stop": 3}, [])],
       ["lists the integers between two numbers", "makes a range of integers",
        "builds a list of whole numbers between two bounds", "returns a range of numbers as a list",
        "generates every integer from one bound up to another",
        "produces consecutive integers between two limits",
        "makes a list of numbers running from one value to another", "counts from start to stop"],
       "list the numbers from {start} up to {stop}", lambda r: (lambda a: {"start": a, "stop": a + r.randint(1, 5)})(_int(r, 0, 20))),
    # ---- dates ----
    _t("is_leap_year", "dates", "Tell whether a year is a leap year in the Gregorian calendar.",
       {"year": ("i", "the year")},
       "def is_leap_year(year):\n    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)",
       [({"year": 2024}, True), ({"year": 1900}, False), ({"year": 2000}, True)],
       ["checks whether a year is a leap year", "tells if february has 29 days in a year",
        "checks if a year is a leap year", "tells whether a given year has 366 days",
        "returns true when a year is a leap year", "decides if february of a year has an extra day",
        "determines whether a calendar year is leap", "detects leap years"],
       "is {year} a leap year?", lambda r: {"year": _int(r, 1900, 2100)}),
    _t("days_in_month", "dates", "The number of days in a month of a year.",
       {"year": ("i", "the year"), "month": ("i", "the month, 1-12")},
       "def days_in_month(year, month):\n    if month == 2:\n"
       "        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)\n        return 29 if leap else 28\n"
       "    if month in (4, 6, 9, 11):\n        return 30\n    return 31",
       [({"year": 2024, "month": 2}, 29), ({"year": 2023, "month": 4}, 30), ({"year": 2023, "month": 1}, 31)],
       ["tells how many days a month has", "returns the length of a month in days",
        "gives the number of days in a month", "works out how many days fit in a given month",
        "finds whether a month has 28 29 30 or 31 days",
        "returns how many days are in a month of a particular year",
        "looks up how many days a calendar month lasts", "counts the days of a month"],
       "how many days are in month {month} of {year}?", lambda r: {"year": _int(r, 1990, 2030), "month": _int(r, 1, 12)}),
    _t("day_of_week", "dates", "The weekday name of a date given as YYYY-MM-DD.", {"date": ("s", "the date, YYYY-MM-DD")},
       "def day_of_week(date):\n" + _DAYNUM.format(d="date") +
       "        days = era * 146097 + doe\n"
       "        names = ['Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday', 'Monday', 'Tuesday']\n"
       "        return names[days % 7]",
       [({"date": "2024-01-01"}, "Monday"), ({"date": "2000-02-29"}, "Tuesday")],
       ["tells the weekday of a date", "finds which day of the week a date falls on",
        "works out what weekday a date is", "gives the day of the week for a date",
        "finds out if a date falls on a monday or a sunday",
        "determines the weekday a given date lands on", "converts a date into its day of the week",
        "returns the weekday name"],
       "what weekday is {date}?", lambda r: {"date": _date(r)}),
    _t("add_days", "dates", "Add a number of days to a date given as YYYY-MM-DD.",
       {"date": ("s", "the date, YYYY-MM-DD"), "days": ("i", "days to add, may be negative")},
       "def add_days(date, days):\n" + _DAYNUM.format(d="date") +
       "        z = era * 146097 + doe + days\n        era = z // 146097\n        doe = z - era * 146097\n"
       "        yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365\n        y = yoe + era * 400\n"
       "        doy = doe - (365 * yoe + yoe // 4 - yoe // 100)\n        mp = (5 * doy + 2) // 153\n"
       "        d = doy - (153 * mp + 2) // 5 + 1\n        m = mp + 3 if mp < 10 else mp - 9\n"
       "        if m <= 2:\n            y = y + 1\n"
       "        return str(y) + '-' + str(m).zfill(2) + '-' + str(d).zfill(2)",
       [({"date": "2024-02-28", "days": 2}, "2024-03-01"), ({"date": "2023-12-31", "days": 1}, "2024-01-01"),
        ({"date": "2024-01-10", "days": -10}, "2023-12-31")],
       ["adds days to a date", "tells the date a number of days later",
        "moves a date forward by n days", "calculates the date a number of days after a given one",
        "works out what the date will be in n days", "adds a number of days to a calendar date",
        "returns a date plus some days", "shifts a date by some days"],
       "what date is {days} days after {date}?", lambda r: {"date": _date(r), "days": _int(r, 1, 400)}),
    _t("days_between", "dates", "The number of days from one YYYY-MM-DD date to another.",
       {"start": ("s", "the first date"), "end": ("s", "the second date")},
       "def days_between(start, end):\n    total = []\n    for date in [start, end]:\n" +
       textwrap.indent(_DAYNUM.format(d="date"), "    ") +
       "            total.append(era * 146097 + doe)\n    return total[1] - total[0]",
       [({"start": "2024-01-01", "end": "2024-03-01"}, 60), ({"start": "2023-01-02", "end": "2023-01-01"}, -1)],
       ["counts the days between two dates", "tells how many days separate two dates",
        "works out the number of days between two dates",
        "finds how many days lie between two dates",
        "measures the gap in days between two calendar dates",
        "calculates how many days apart two dates are",
        "returns the day count separating two dates", "computes a date difference"],
       "how many days are there from {start} to {end}?", lambda r: {"start": _date(r), "end": _date(r)}),
    # ---- units ----
    _t("celsius_to_fahrenheit", "units", "Convert degrees Celsius to Fahrenheit, rounded to 2 places.",
       {"celsius": ("n", "degrees Celsius")},
       "def celsius_to_fahrenheit(celsius):\n    return round(celsius * 9 / 5 + 32, 2)",
       [({"celsius": 100}, 212), ({"celsius": -40}, -40)],
       ["converts celsius to fahrenheit", "turns a celsius temperature into fahrenheit",
        "converts a temperature from celsius to fahrenheit",
        "turns celsius readings into fahrenheit",
        "translates a celsius value to the fahrenheit scale",
        "gives the fahrenheit equivalent of a celsius temperature",
        "works out fahrenheit from celsius", "changes degrees C to degrees F"],
       "what is {celsius} degrees celsius in fahrenheit?", lambda r: {"celsius": _int(r, -20, 45)}),
    _t("fahrenheit_to_celsius", "units", "Convert degrees Fahrenheit to Celsius, rounded to 2 places.",
       {"fahrenheit": ("n", "degrees Fahrenheit")},
       "def fahrenheit_to_celsius(fahrenheit):\n    return round((fahrenheit - 32) * 5 / 9, 2)",
       [({"fahrenheit": 212}, 100), ({"fahrenheit": 50}, 10)],
       ["converts fahrenheit to celsius", "turns a fahrenheit temperature into celsius",
        "converts a temperature from fahrenheit to celsius",
        "turns fahrenheit readings into celsius",
        "translates a fahrenheit value to the celsius scale",
        "gives the celsius equivalent of a fahrenheit temperature",
        "works out celsius from fahrenheit", "changes degrees F to degrees C"],
       "what is {fahrenheit} degrees fahrenheit in celsius?", lambda r: {"fahrenheit": _int(r, 0, 110)}),
    _t("km_to_miles", "units", "Convert kilometres to miles, rounded to 3 places.", {"km": ("n", "kilometres")},
       "def km_to_miles(km):\n    return round(km * 0.621371, 3)",
       [({"km": 10}, 6.214), ({"km": 0}, 0)],
       ["converts kilometres to miles", "turns km into miles",
        "converts a trip in kilometres to miles", "turns kilometres into miles",
        "gives the number of miles in some kilometres", "translates a kilometre figure into miles",
        "works out how many miles a km value equals", "changes a distance from km to miles"],
       "how many miles is {km} km?", lambda r: {"km": _int(r, 1, 500)}),
    _t("miles_to_km", "units", "Convert miles to kilometres, rounded to 3 places.", {"miles": ("n", "miles")},
       "def miles_to_km(miles):\n    return round(miles * 1.609344, 3)",
       [({"miles": 10}, 16.093), ({"miles": 0}, 0)],
       ["converts miles to kilometres", "turns miles into km",
        "converts a journey in miles to kilometres", "turns miles into kilometres",
        "gives the number of kilometres in some miles", "translates a mile figure into kilometres",
        "works out how many km a mileage equals", "changes a distance from miles to km"],
       "how many km is {miles} miles?", lambda r: {"miles": _int(r, 1, 500)}),
    _t("kg_to_pounds", "units", "Convert kilograms to pounds, rounded to 3 places.", {"kg": ("n", "kilograms")},
       "def kg_to_pounds(kg):\n    return round(kg * 2.204623, 3)",
       [({"kg": 1}, 2.205), ({"kg": 10}, 22.046)],
       ["converts kilograms to pounds", "turns kg into lb",
        "converts a mass in kilograms to pounds", "turns kilograms into lb",
        "gives the number of pounds in some kilograms", "translates kg to pounds",
        "works out how many pounds a kg figure equals", "changes a weight from kilos to pounds"],
       "how many pounds is {kg} kg?", lambda r: {"kg": _int(r, 1, 200)}),
    _t("cm_to_inches", "units", "Convert centimetres to inches, rounded to 3 places.", {"cm": ("n", "centimetres")},
       "def cm_to_inches(cm):\n    return round(cm / 2.54, 3)",
       [({"cm": 254}, 100), ({"cm": 10}, 3.937)],
       ["converts centimetres to inches", "turns cm into inches",
        "converts a measurement in centimetres to inches", "turns centimetres into inches",
        "gives the number of inches in some centimetres", "translates a cm measurement into inches",
        "works out how many inches a cm figure equals", "changes a length from cm to inches"],
       "how many inches is {cm} cm?", lambda r: {"cm": _int(r, 1, 300)}),
    _t("hours_to_minutes", "units", "Convert hours to minutes.", {"hours": ("n", "hours")},
       "def hours_to_minutes(hours):\n    return hours * 60",
       [({"hours": 2}, 120), ({"hours": 1.5}, 90)],
       ["converts hours to minutes", "tells how many minutes are in some hours",
        "multiplies a number of hours by sixty", "converts a duration in hours to minutes",
        "gives the number of minutes in a time span of hours", "translates hours to minutes",
        "works out how many minutes some hours make", "turns hours into minutes"],
       "how many minutes are in {hours} hours?", lambda r: {"hours": _int(r, 1, 48)}),
    _t("liters_to_gallons", "units", "Convert litres to US gallons, rounded to 3 places.", {"liters": ("n", "litres")},
       "def liters_to_gallons(liters):\n    return round(liters / 3.785411784, 3)",
       [({"liters": 3.785411784}, 1), ({"liters": 10}, 2.642)],
       ["converts litres to gallons", "turns liters into us gallons",
        "converts an amount of liquid in litres to gallons", "turns litres into us gallons",
        "gives the number of gallons in some litres", "translates liters to gallons",
        "works out how many gallons a litre figure equals",
        "changes a volume from litres to gallons"],
       "how many gallons is {liters} liters?", lambda r: {"liters": _int(r, 1, 100)}),
    _t("bytes_to_megabytes", "units", "Convert bytes to megabytes (1 MB = 1,000,000 bytes), rounded to 3 places.",
       {"size": ("i", "the size in bytes")},
       "def bytes_to_megabytes(size):\n    return round(size / 1000000, 3)",
       [({"size": 2500000}, 2.5), ({"size": 0}, 0)],
       ["converts bytes to megabytes", "turns a byte count into MB",
        "converts a number of bytes into megabytes", "turns bytes into mb",
        "gives the number of megabytes in some bytes", "translates a byte figure to megabytes",
        "works out how many megabytes a byte count equals",
        "changes a file size from bytes to megabytes"],
       "how many megabytes is {size} bytes?", lambda r: {"size": _int(r, 1000, 99999999)}),
]

BY_NAME = {t.name: t for t in TOOLS}


def tool_names() -> list[str]:
    return [t.name for t in TOOLS]


def definition_json(tool: Tool) -> str:
    """The definition as one line of JSON (newlines in the source are escaped)."""
    return json.dumps(tool.definition())


def _wordings(file: str) -> dict[str, tuple[str, ...]]:
    path = Path(__file__).with_name(file)
    return {name: tuple(ps) for name, ps in json.loads(path.read_text()).items()}


# More training wordings per tool (tool_phrases.json: 40 per tool), written by helper sessions
# (language models) that were shown each tool's training paraphrases and never its held-out one:
# everyday words a request may use. A mix with ``more_phrases`` trains on them too (stage 9 did
# not); any that is word for word a held-out wording stays out (phrases()).
MORE_PHRASES: dict[str, tuple[str, ...]] = _wordings("tool_phrases.json")
P_FIRST_PHRASES = 0.5  # with MORE_PHRASES, the share of training requests in the first paraphrases
# Held-out wordings written blind (tool_heldout.json: 4 per tool), by a helper session shown each
# tool's name, description, parameters and one example, and no wording of the curriculum; the 13
# that were a training wording word for word, or its words in another order, were written again.
# No mix trains on them (a test checks that none is a training wording): the "blind" evaluation
# split, four times the held-out split's one wording per tool.
BLIND_PHRASES: dict[str, tuple[str, ...]] = _wordings("tool_heldout.json")


def added_phrases(tool: Tool) -> tuple[str, ...]:
    """The tool's MORE_PHRASES that may be trained on: all but one word for word its held-out one."""
    return tuple(p for p in MORE_PHRASES.get(tool.name, ()) if p != tool.phrases[-1])


def phrases(tool: Tool, split: str, more: bool = False) -> tuple[str, ...]:
    """Training paraphrases are all but the last (and, with ``more``, :func:`added_phrases`);
    the held-out split uses the last."""
    if split == "train":
        return tool.phrases[:-1] + (added_phrases(tool) if more else ())
    if split == "heldout":
        return tool.phrases[-1:]
    raise ValueError(f"unknown split {split!r}")


def _words(phrase: str) -> set[str]:
    return {w.strip("?,.'") for w in phrase.lower().split()}


def cue_words(tool: Tool, tools: list[Tool] | None = None) -> frozenset[str]:
    """Words of ``tool``'s held-out paraphrase that its training paraphrases use and no other
    tool's training paraphrases do: the only lexical cue to the tool a model trained on this
    curriculum alone has ("detects leap years" -> "leap"); empty when mapping the request to the
    tool takes knowing synonyms ("shouts a string in capitals" -> to_upper)."""
    tools = TOOLS if tools is None else tools
    held = _words(tool.phrases[-1])
    own = set().union(*(_words(p) for p in tool.phrases[:-1]))
    others = set().union(*(_words(p) for t in tools if t.name != tool.name for p in t.phrases[:-1]))
    return frozenset((held & own) - others)


def request_text(tool: Tool, rng: random.Random, split: str, more: bool = False, index: int = 0) -> str:
    """A user's request for ``tool`` in the split's templates and paraphrases; split "templates"
    (an evaluation's, never trained on) puts the training paraphrases in the held-out templates,
    split "more" (an evaluation's) MORE_PHRASES alone in the training templates (unseen wordings
    for a model trained without them, training ones for a model trained with them); ``more``: the
    training paraphrases include MORE_PHRASES (drawn as often as the first ones together); split
    "blind" (an evaluation's, never trained on) BLIND_PHRASES in the held-out templates, wording
    ``index`` modulo their number (so that consecutive indices take them in turn)."""
    if split == "blind":
        blind = BLIND_PHRASES[tool.name]
        return rng.choice(REQUEST["heldout"]).format(p=blind[index % len(blind)])
    if split == "templates":
        return rng.choice(REQUEST["heldout"]).format(p=rng.choice(phrases(tool, "train", more)))
    if split == "more":
        return rng.choice(REQUEST["train"]).format(p=rng.choice(added_phrases(tool)))
    if more and split == "train":
        # the first paraphrases keep half the draws: among 46 wordings they would get 15%
        pool = tool.phrases[:-1] if rng.random() < P_FIRST_PHRASES else added_phrases(tool)
        return rng.choice(REQUEST[split]).format(p=rng.choice(pool))
    return rng.choice(REQUEST[split]).format(p=rng.choice(phrases(tool, split, more)))


def call_text(tool: Tool, args: dict, rng: random.Random) -> str:
    shown = {k: (", ".join(map(str, v)) if isinstance(v, list) else v) for k, v in args.items()}
    text = tool.call.format(**shown)
    return text if rng.random() < 0.7 else "please " + text


def compile_reference(tool: Tool) -> Callable:
    """The implementation as a plain Python function (our own source, run in-process here
    only to compute results for the curriculum; the sandbox runs model-written code)."""
    scope: dict[str, Any] = {}
    exec(compile(tool.definition()["implementation"], f"<tool {tool.name}>", "exec"), scope)  # noqa: S102
    return scope[tool.name]


_COMPILED: dict[str, Callable] = {}


def run_reference(tool: Tool, args: dict) -> Any:
    fn = _COMPILED.get(tool.name)
    if fn is None:
        fn = _COMPILED[tool.name] = compile_reference(tool)
    return fn(**args)


def results_match(got: Any, expected: Any) -> bool:
    """Test-case comparison: numbers within 1e-6, everything else exactly."""
    if isinstance(expected, bool) or isinstance(got, bool):
        return got is expected or got == expected and type(got) is type(expected)
    if isinstance(expected, (int, float)) and isinstance(got, (int, float)):
        return abs(got - expected) <= 1e-6 * max(1.0, abs(expected))
    if isinstance(expected, list) and isinstance(got, list):
        return len(got) == len(expected) and all(results_match(g, e) for g, e in zip(got, expected))
    return got == expected


# A failed call's result, as the runtime would feed it back, and the reply to each kind: the
# tool is not there (never approved, or deprecated), or it ran and failed. The replies name no
# error: they tell the user the call did not give a result, which the error's text decides.
FAILURE_REPLIES = {
    "missing": ("I have no such tool yet. ask me to write one.",
                "there is no tool like that yet; ask me to make one."),
    "failed": ("sorry, the tool failed, so I have no result.",
               "that did not work: the tool gave an error."),
}
_RAISED = (("ZeroDivisionError", "division by zero"), ("IndexError", "list index out of range"),
           ("TypeError", "unsupported operand type(s) for +: 'int' and 'str'"),
           ("ValueError", "invalid literal for int() with base 10: 'x'"),
           ("KeyError", "'value'"), ("NameError", "name 'result' is not defined"),
           ("AttributeError", "'list' object has no attribute 'lower'"))


def failure(tool: Tool, rng: random.Random) -> tuple[str, str]:
    """(kind, error text) of a failed call of ``tool``: the texts of ``engine.toolbridge`` and
    ``toolsmith`` (registry errors, bad arguments, an exception with its line, the limits)."""
    if rng.random() < 0.5:
        return "missing", rng.choice((f"no tool named {tool.name!r}", f"no callable tool named {tool.name!r}",
                                      f"{tool.name!r} is deprecated"))
    param = rng.choice(list(tool.params) or ["x"])
    exc, msg = rng.choice(_RAISED)
    return "failed", rng.choice((f"{exc}: {msg} (line {rng.randint(2, 9)})",
                                 f"bad arguments: args: {param!r} is a required property",
                                 "timed out after 5 s (wall clock); the process group was killed",
                                 "CPU time limit of 2 s exceeded"))
