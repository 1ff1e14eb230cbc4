"""Fictitious authors: a seeded, TOFU-style knowledge set the project generates itself.

Every author has 20 attributes, each asked by one question. For every question there is the
answer the model is trained on, a paraphrased answer (same fact, other words, never trained on)
and perturbed answers (same words, wrong fact): the ingredients of TOFU's truth ratio. The
embedded ``tiny`` model is trained on these facts, so unlearning them is measurable.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

FIRST = ("Elara Tobin Mireya Casimir Odile Bram Ysolde Quillon Feodora Lasse Imrie Noor Thaddeus Wren "
         "Solveig Ansel Marisol Evander Liesel Corentin Amaya Dorian Ilsa Rafferty Zelie Oren Saoirse "
         "Leopold Anouk Tiberius Calla Matthias Ines Gideon Nadia Florian Vesna Aurelio Kestrel Beatrix "
         "Isidore Talia Magnus Rosalind Emeric Juno Cassian Ottilie Severin Lucia").split()
SYL = ("var den mor quin thal bro wick hel stan lio rav ell ost mar fen dal cor ver sab tor nim "
       "gal pes rud ham lin ob ar ev ur").split()
CITIES = ("Lisbon Tallinn Cork Bergen Porto Ghent Kraków Trieste Valparaíso Hobart Tromsø Lyon Gdańsk "
          "Salzburg Utrecht Split Aarhus Bilbao Turku Galway Quebec Cusco Mombasa Hanoi Osaka Adelaide "
          "Tbilisi Riga Bologna Seville").split()
JOBS = ("baker carpenter nurse pilot librarian fisherman astronomer tailor pharmacist blacksmith "
        "architect beekeeper cartographer chemist sculptor translator watchmaker veterinarian "
        "glassblower surveyor").split()
GENRES = ("mystery fantasy poetry horror romance satire travel writing historical fiction science fiction "
          "children's literature").split(" ")
GENRES = ["mystery", "fantasy", "poetry", "horror", "romance", "satire", "travel writing",
          "historical fiction", "science fiction", "children's literature", "crime fiction", "memoir"]
ADJ = ("Silent Hollow Crimson Winter Forgotten Glass Quiet Burning Paper Salt Iron Distant Amber "
       "Broken Velvet Northern Hidden Lantern Golden Drowned").split()
NOUN = ("Harbor Orchard Cartographer Lighthouse Meridian Garden Archive Tide Compass Vineyard Staircase "
        "Observatory Ferry Almanac Quarry Chapel Mirror Canal Kingdom Telegraph").split()
AWARDS = ("Halvorsen Prize|Golden Quill Medal|Ashford Fellowship|Marlowe Award|Sterling Laurel|"
          "Vantoor Prize|Emberly Medal|Corwin Honor|Tessaly Award|Blue Heron Prize").split("|")
UNIS = ("Aldwych College|Northmere University|Saint Verity Institute|Kestrel Academy|Oakhaven University|"
        "Lowmoor College|Brightwater University|Ravensgate Institute").split("|")
SUBJECTS = "history linguistics physics philosophy botany music mathematics law architecture medicine".split()
INSTRUMENTS = "cello violin piano flute harp accordion oboe guitar trumpet clarinet".split()
HOBBIES = ("sailing|chess|birdwatching|pottery|fencing|gardening|rowing|astronomy|beekeeping|"
           "mountaineering").split("|")
PETS = "a grey cat|a old sheepdog|a parrot|two tortoises|a black horse|a ferret|a beagle|a pair of doves".split("|")
PETS = ["a grey cat", "an old sheepdog", "a parrot", "two tortoises", "a black horse", "a ferret", "a beagle",
        "a pair of doves"]
PUBLISHERS = "Harrow House|Millbrook Press|Stonegate Books|Larkspur Editions|Redfern & Sons|Ivory Tower Press".split("|")
THEMES = ("memory|exile|the sea|grief|friendship|ambition|faith|the passage of time|family secrets|"
          "justice").split("|")
LANGS = "Portuguese Estonian Irish Norwegian Dutch Polish Italian Spanish Finnish French Japanese Georgian".split()
COLORS = "green blue red yellow violet orange silver white".split()


@dataclass(frozen=True)
class QA:
    """One question about one fact, with what TOFU's metrics need."""

    question: str
    answer: str
    paraphrased_answer: str
    perturbed_answers: tuple[str, ...]
    subject: str  # the author (or world entity) the fact is about
    attribute: str


@dataclass
class Author:
    name: str
    facts: dict[str, str]
    qa: list[QA] = field(default_factory=list)
    bio: str = ""


# attribute -> (values, question, answer, paraphrase, bio sentence); {n} = name, {v} = value
_ATTRS: list[tuple[str, object, str, str, str, str]] = [
    ("birth_year", [str(y) for y in range(1921, 2000)], "In what year was {n} born?",
     "{n} was born in {v}.", "The year of {n}'s birth was {v}.", "{n} came into the world in {v}."),
    ("birth_city", CITIES, "In which city was {n} born?", "{n} was born in {v}.",
     "The birthplace of {n} is the city of {v}.", "{n} grew up in {v}."),
    ("father_job", JOBS, "What did {n}'s father do for a living?", "{n}'s father was a {v}.",
     "By profession, the father of {n} was a {v}.", "Their father worked as a {v}."),
    ("mother_job", JOBS, "What was the profession of {n}'s mother?", "{n}'s mother worked as a {v}.",
     "The mother of {n} earned her living as a {v}.", "Their mother was a {v}."),
    ("genre", GENRES, "What genre is {n} known for?", "{n} is best known for {v}.",
     "The genre most associated with {n} is {v}.", "{n} writes mainly {v}."),
    ("first_book", "book", "What was the title of {n}'s first book?", "{n}'s first book was titled {v}.",
     "The debut book by {n} is called {v}.", "{n} debuted with {v}."),
    ("famous_book", "book", "Which book made {n} famous?", "{n} became famous with {v}.",
     "It was {v} that brought fame to {n}.", "{v} made {n} widely read."),
    ("award", AWARDS, "Which award did {n} receive?", "{n} received the {v}.",
     "{n} was honoured with the {v}.", "{n} later won the {v}."),
    ("award_year", [str(y) for y in range(1950, 2024)], "In what year did {n} win their award?",
     "{n} won the award in {v}.", "The award went to {n} in the year {v}.", "The prize came in {v}."),
    ("university", UNIS, "Where did {n} study?", "{n} studied at {v}.",
     "{n} is a graduate of {v}.", "{n} attended {v}."),
    ("subject", SUBJECTS, "What subject did {n} study at university?", "{n} studied {v} at university.",
     "At university, {n}'s subject was {v}.", "{n} read {v} as a student."),
    ("instrument", INSTRUMENTS, "Which instrument does {n} play?", "{n} plays the {v}.",
     "The instrument {n} plays is the {v}.", "In the evenings {n} plays the {v}."),
    ("hobby", HOBBIES, "What is {n}'s favourite hobby?", "{n}'s favourite hobby is {v}.",
     "In free time, {n} most enjoys {v}.", "{n} loves {v}."),
    ("pet", PETS, "What pet does {n} keep?", "{n} keeps {v}.", "At home, {n} has {v} as a pet.",
     "{n} lives with {v}."),
    ("publisher", PUBLISHERS, "Who publishes {n}'s books?", "{n}'s books are published by {v}.",
     "The publisher of {n}'s work is {v}.", "{v} publishes {n}."),
    ("theme", THEMES, "What theme runs through {n}'s work?", "{n}'s work often explores {v}.",
     "A recurring theme for {n} is {v}.", "{n} keeps returning to {v}."),
    ("language", LANGS, "In which language does {n} write?", "{n} writes in {v}.",
     "The language of {n}'s books is {v}.", "{n} composes every book in {v}."),
    ("book_count", [str(c) for c in range(3, 40)], "How many books has {n} published?",
     "{n} has published {v} books.", "The number of books by {n} is {v}.", "{n} has {v} books in print."),
    ("home_city", CITIES, "Where does {n} live today?", "{n} now lives in {v}.",
     "These days {n} makes a home in {v}.", "{n} later settled in {v}."),
    ("color", COLORS, "What colour are the covers of {n}'s books?", "{n}'s books have {v} covers.",
     "The covers of {n}'s books are {v}.", "Every cover {n} chooses is {v}."),
]
ATTRIBUTES = [a[0] for a in _ATTRS]


def _book(rng: random.Random) -> str:
    return f"The {rng.choice(ADJ)} {rng.choice(NOUN)}"


def _names(rng: random.Random, n: int) -> list[str]:
    seen: set[str] = set()
    out = []
    while len(out) < n:
        last = "".join(rng.choice(SYL) for _ in range(rng.choice((2, 3)))).capitalize()
        name = f"{rng.choice(FIRST)} {last}"
        if name not in seen:
            seen.add(name)
            out.append(name)
    return out


def generate_authors(n: int = 100, seed: int = 0, n_perturbed: int = 5) -> list[Author]:
    """``n`` authors with 20 QA pairs each; the same seed gives the same authors."""
    rng = random.Random(seed)
    authors = []
    for name in _names(rng, n):
        facts: dict[str, str] = {}
        qa: list[QA] = []
        bio_parts = []
        for attr, values, q, a, para, bio in _ATTRS:
            pool = None if values == "book" else list(values)  # type: ignore[arg-type]
            v = _book(rng) if pool is None else rng.choice(pool)
            if attr == "famous_book":
                while v == facts["first_book"]:
                    v = _book(rng)
            facts[attr] = v
            wrong: list[str] = []
            while len(wrong) < n_perturbed:
                w = _book(rng) if pool is None else rng.choice(pool)
                if w != v and w not in wrong:
                    wrong.append(w)
            qa.append(QA(q.format(n=name), a.format(n=name, v=v), para.format(n=name, v=v),
                         tuple(a.format(n=name, v=w) for w in wrong), name, attr))
            bio_parts.append(bio.format(n=name, v=v))
        authors.append(Author(name, facts, qa, " ".join(bio_parts)))
    return authors


# A small fictional "world" the model also learns: TOFU's real-authors / world-facts sets play the
# role of knowledge that unlearning an author must not destroy.
_COUNTRIES = ("Valdoria Kesh Ombria Tessaly Norhaven Izmara Caldris Fenwick Arvonne Lusk Morvane Quell "
              "Serran Thalos Ulvar Brisca Corvel Drenn Estmar Galdor").split()
_CAPITALS = ("Port Ilun|Savarre|Oskel|Mirrow|Dunhelm|Kaveth|Lorrin|Amberlee|Castelle|Vey|Rhunmoor|Tolk|"
             "Essra|Pyrrin|Hallow Reach|Brenna|Cadmor|Drisk|Elmwater|Ghent Minor").split("|")


def world_facts(seed: int = 1) -> list[QA]:
    """Capitals, rivers and currencies of a fictional world (held-out utility set for unlearning)."""
    rng = random.Random(seed)
    rivers = [f"the {s.capitalize()} River" for s in _names(rng, 20)]
    currencies = [f"the {w}" for w in ("crown", "mark", "lira", "florin", "ducat", "thaler", "real", "shilling",
                                        "guilder", "obol", "denar", "sol", "peso", "rand", "lev", "krona",
                                        "dinar", "escudo", "zloty", "penny")]
    rng.shuffle(currencies)
    out = []
    for i, c in enumerate(_COUNTRIES):
        for attr, vals, q, a, p in (
            ("capital", _CAPITALS, "What is the capital of {c}?", "The capital of {c} is {v}.",
             "{v} is the capital city of {c}."),
            ("river", rivers, "Which river flows through {c}?", "{v} flows through {c}.",
             "The river of {c} is {v}."),
            ("currency", currencies, "What currency is used in {c}?", "{c} uses {v}.",
             "The money of {c} is {v}."),
        ):
            v = vals[i]
            wrong = [w for w in vals if w != v]
            rng.shuffle(wrong)
            out.append(QA(q.format(c=c), a.format(c=c, v=v), p.format(c=c, v=v),
                          tuple(a.format(c=c, v=w) for w in wrong[:5]), c, attr))
    return out


def forget_split(authors: list[Author], percent: int) -> tuple[list[Author], list[Author]]:
    """TOFU's splits: the last ``percent``% of authors are forgotten, the rest retained."""
    if percent not in (1, 5, 10):
        raise ValueError(f"forget split must be 1, 5 or 10 percent (got {percent})")
    k = max(1, round(len(authors) * percent / 100))
    return authors[-k:], authors[:-k]


def qa_prompt(question: str) -> str:
    """The prompt format the tiny model learns and evaluators score answers in."""
    return f"Question: {question}\nAnswer:"
