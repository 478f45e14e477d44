"""Words and templates of the curriculum, split into training and held-out parts.

The held-out split is by key vocabulary (nouns never seen in training) and by
templates (telling and asking phrasings never seen in training). Every template
keeps the value right after "the <key> is " or "<key>: " so the write key and
the read query see the same kind of context (INTERFACES.md, write key convention).
"""
from __future__ import annotations

import random

SPLITS = ("train", "heldout")

ADJECTIVES = (
    "red blue green black white yellow purple orange silver golden old new small big "
    "quiet loud front back upper lower left right north south east west spare main "
    "secret private shared spare hidden daily weekly"
).split()

NOUNS = (
    "door lamp gate locker garage bike safe router printer vault cabinet drawer "
    "car boat train bus cellar attic kitchen garden shed window mailbox alarm "
    "phone laptop tablet camera badge card wallet ticket token account server "
    "folder project meeting office desk room floor building tower bridge island "
    "river lake forest field farm barn stable market shop bakery library museum "
    "school studio theater cinema station harbor airport hotel cabin tent "
    "piano guitar violin drum radio clock watch compass map atlas diary journal "
    "notebook ledger recipe parcel package crate basket bottle jar kettle oven "
    "fridge freezer heater fan pump valve engine motor robot drone rocket satellite "
    "planet comet "
    "umbrella quilt yacht zipper xylophone igloo jacket hammock helmet kiosk nest "
    "orchard pantry quarry ranch ukulele van wagon yard zoo"
).split()
NOUNS = tuple(dict.fromkeys(NOUNS))  # stable order, no duplicates

# Every fifth noun (in a fixed order) is never seen in training.
HELDOUT_NOUNS = tuple(n for i, n in enumerate(NOUNS) if i % 5 == 2)
TRAIN_NOUNS = tuple(n for n in NOUNS if n not in set(HELDOUT_NOUNS))
KIND_WORDS = ("code", "number", "password", "pin", "name", "color", "key", "tag", "label", "word")

TELL = {
    "train": (
        "remember that the {k} is {v}",
        "please remember: the {k} is {v}",
        "note that the {k} is {v}",
        "for later, the {k} is {v}",
        "just so you know, the {k} is {v}",
        "the {k} is {v}, keep that in mind",
        "save this: {k}: {v}",
        "ok so the {k} is {v}",
        # negated "forget": storing, not forgetting (the model must not key on the word alone)
        "don't forget that the {k} is {v}",
        "never forget: the {k} is {v}",
        "make sure you do not forget it, the {k} is {v}",
        "hold on to this: the {k} is {v}",
        "store this for me, the {k} is {v}",
        "here is one for you: the {k} is {v}",
        "I want you to know that the {k} is {v}",
    ),
    "heldout": (
        "keep in mind that the {k} is {v}",
        "write this down: the {k} is {v}",
        "do not forget, the {k} is {v}",
    ),
}
ASK = {
    "train": (
        "what is the {k}?",
        "what was the {k} again?",
        "do you remember the {k}?",
        "tell me the {k}",
        "remind me of the {k}",
        "can you tell me the {k}?",
        "what's the {k}?",
        "do you still know the {k}?",
        "I need the {k}, what is it?",
        "which value did I give you for the {k}?",
    ),
    "heldout": (
        "what did I say the {k} was?",
        "could you recall the {k} for me?",
    ),
}
# The answer always names the key right before the value: the query sees "the <key> is ".
ANSWER = ("the {k} is {v}.", "sure, the {k} is {v}.", "I remember: the {k} is {v}.")
ACK = ("ok, noted.", "got it.", "ok, I will remember that.", "noted.", "sure.", "ok.")
UPDATE = {
    "train": ("the {k} changed, it is now {v}", "update: the {k} is {v}", "new value, the {k} is {v}"),
    "heldout": ("correction: the {k} is {v}",),
}
REPLACE = ("the {k} is no longer {old}, the {k} is {v}",)
FORGET = {
    "train": ("forget that the {k} is {v}", "please forget it, the {k} is {v}"),
    "heldout": ("you can drop it: the {k} is {v}",),
}
FORGET_ACK = ("ok, I forgot it.", "done, it is gone.", "ok, forgotten.")
UNKNOWN = ("I do not know the {k}.", "you did not tell me the {k}.", "I have nothing stored for the {k}.")

SMALL_TALK = (
    ("how are you today?", "I am fine, thanks for asking."),
    ("what a long day.", "sounds tiring. take a break if you can."),
    ("I had pasta for lunch.", "nice, pasta is a good choice."),
    ("it is raining again.", "I hope you have an umbrella."),
    ("do you like music?", "I like hearing what you listen to."),
    ("I am going for a walk.", "enjoy the walk."),
    ("my cat knocked over a glass.", "oh no, I hope nothing broke."),
    ("I finished the report.", "well done."),
    ("the train was late this morning.", "that is annoying."),
    ("I started reading a new book.", "what is it about?"),
    ("it is about a lighthouse keeper.", "that sounds calm and a bit lonely."),
    ("I need coffee.", "coffee sounds like a plan."),
    ("tell me something nice.", "you are doing better than you think."),
    ("what day is it?", "I do not have a calendar, but it is a good day to talk."),
    ("I am learning to cook.", "what will you try first?"),
    ("my neighbor is painting the fence.", "what color?"),
    ("thanks for the help.", "any time."),
    ("I can not sleep.", "try to rest your eyes for a while."),
    ("we went hiking on sunday.", "that sounds fun."),
    ("the weather is nice.", "good day to be outside."),
)
# How people open (and sometimes close) a chat: a conversation's first turn in a share of the
# training conversations, so that a plain "hello" gets a greeting, not a recalled fact.
GREETINGS = (
    ("hello", "hello! tell me something to remember, or ask me for a tool."),
    ("hello!", "hi, nice to see you."),
    ("hi", "hi, how can I help?"),
    ("hi there", "hello, what is on your mind?"),
    ("hey", "hey, what can I do for you?"),
    ("good morning", "good morning!"),
    ("good evening", "good evening, how was your day?"),
    ("how are you?", "I am fine, thanks for asking."),
    ("who are you?", "I am mosaic, a small model with a memory. tell me things and ask for them later."),
    ("what can you do?", "I remember what you tell me, and I can write small tools for you."),
    ("thank you", "you are welcome."),
    ("bye", "bye, talk to you soon."),
)
LOOKALIKE = (
    "I cleaned the {k} yesterday.",
    "the {k} needs a repair.",
    "someone asked me about the {k}.",
    "I never use the {k} anymore.",
    "is the {k} important?",
    "I saw {n} people near the {k}.",
    "the {k} cost {n} euros.",
)
LOOKALIKE_REPLY = ("I see.", "ok.", "interesting.", "good to know.", "hm, ok.")

TASKS = ("call mom", "water the plants", "pay the rent", "send the report", "buy milk",
         "book a table", "feed the cat", "check the mail", "renew the passport",
         "back up the laptop", "return the books", "fix the bike light")
HELDOUT_TASKS = ("clean the gutter", "email the landlord", "charge the drone")
PROMISE = {
    "train": ("remind me to {t} later", "please remind me to {t}", "don't let me forget to {t}"),
    "heldout": ("can you nudge me to {t} later?",),
}
PROMISE_REPLY = ("I will remind you to {t}.", "ok, I will remind you to {t} later.")
DONE = ("I did it: {t}. you can drop the reminder", "done with {t}, thanks")
DONE_REPLY = ("great, I closed the reminder to {t}.", "ok, the reminder to {t} is closed.")
FOLLOW_UP = ("reminder: you wanted to {t}.", "just a reminder to {t}.")


def nouns(split: str) -> tuple[str, ...]:
    """The nouns a split may use (training and held-out sets are disjoint)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} (expected one of {SPLITS})")
    return TRAIN_NOUNS if split == "train" else HELDOUT_NOUNS


def make_key(rng: random.Random, split: str) -> str:
    """A fact key such as "blue locker code" or "old door": the noun is the split's."""
    noun = rng.choice(nouns(split))
    form = rng.random()
    if form < 0.45:
        return f"{rng.choice(ADJECTIVES)} {noun}"
    if form < 0.8:
        return f"{noun} {rng.choice(KIND_WORDS)}"
    return f"{rng.choice(ADJECTIVES)} {noun} {rng.choice(KIND_WORDS)}"


def make_value(rng: random.Random) -> str:
    """A random value of 3-6 characters: digits, a letter-digit code or a made-up word."""
    n = rng.randint(3, 6)
    kind = rng.random()
    if kind < 0.45:
        return "".join(rng.choice("0123456789") for _ in range(n))
    if kind < 0.75:
        return "".join(rng.choice("abcdefghjkmnpqrstuvwxyz23456789") for _ in range(n))
    cons, vow = "bcdfghklmnprstvz", "aeiou"
    return "".join(rng.choice(cons) if i % 2 == 0 else rng.choice(vow) for i in range(n))


def templates(table: dict, split: str) -> tuple[str, ...]:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} (expected one of {SPLITS})")
    return table[split]


# Training tasks are also composed (verb + "the <training noun>"): with a dozen fixed tasks the
# model learned to close a commitment after those words only, and never after a new task.
TASK_VERBS = ("clean", "fix", "check", "wash", "paint", "move", "sell", "lock", "repair", "visit",
              "order", "return", "pack", "label", "test", "measure", "empty", "sort", "photograph", "insure")
TRAIN_TASKS = TASKS + tuple(f"{v} the {n}" for v in TASK_VERBS for n in TRAIN_NOUNS)


def tasks(split: str) -> tuple[str, ...]:
    """The tasks a split's commitments are about (training and held-out sets are disjoint)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} (expected one of {SPLITS})")
    return TRAIN_TASKS if split == "train" else HELDOUT_TASKS
