"""Train `spiece.model`: a small real SentencePiece unigram model with T5's special ids.

Run offline, deterministically, with no download:

    python harness/weights/data/train_spiece.py            # rewrites spiece.model here
    python harness/weights/data/train_spiece.py --check    # exit 1 if retraining differs

The corpus is generated here from a seeded RNG (music-prompt sentences), so the model is a
pure function of this file and the sentencepiece version. vocab_size 1000 fits the tiny T5
(1024 embedding rows, like t5-base's 32128 rows over a 32100-piece tokenizer).
"""

from __future__ import annotations

import argparse
import io
import random
import sys
from pathlib import Path

import sentencepiece as spm

OUT = Path(__file__).with_name("spiece.model")
SEED = 1234
N_LINES = 4000
VOCAB_SIZE = 1000

GENRES = """ambient techno house deep-house drum-and-bass dubstep trap hip-hop lo-fi jazz bebop
swing blues rock punk metal shoegaze post-rock folk country bluegrass reggae dub ska funk disco
soul gospel r&b synthwave vaporwave chillwave trance psytrance hardstyle breakbeat jungle garage
grime drill afrobeat highlife bossa-nova samba salsa cumbia tango flamenco klezmer baroque
classical orchestral cinematic minimal idm glitch industrial noise krautrock city-pop k-pop
j-rock enka qawwali raga gamelan polka waltz march chiptune electro acid footwork""".split()

INSTRUMENTS = """piano rhodes wurlitzer organ harpsichord celesta marimba vibraphone xylophone
glockenspiel kalimba harp acoustic-guitar electric-guitar slide-guitar banjo mandolin ukulele
sitar oud koto shamisen bass-guitar upright-bass synth-bass sub-bass violin viola cello
double-bass strings trumpet trombone french-horn tuba saxophone clarinet flute piccolo oboe
bassoon recorder harmonica accordion bagpipes didgeridoo tabla djembe congas bongos timpani
snare kick hi-hats cymbals tambourine shaker cowbell handclaps 808 909 drum-machine arpeggiator
pad choir vocals whistling theremin modular-synth moog mellotron tape-loops field-recordings
vinyl-crackle""".split()

MOODS = """uplifting melancholic dreamy dark aggressive peaceful nostalgic euphoric tense hopeful
mysterious playful somber energetic relaxed hypnotic epic intimate haunting warm cold lush sparse
gritty dusty bright shimmering brooding triumphant wistful serene chaotic groovy bouncy
driving floating heavy airy eerie romantic anxious joyful lonely cheerful""".split()

TEXTURES = """reverb-drenched distorted clean compressed saturated lo-fi hi-fi analog digital
detuned sidechained filtered bitcrushed tape-saturated stereo-wide mono layered minimal dense
staccato legato pizzicato muted plucked bowed strummed fingerpicked syncopated swung
polyrhythmic arpeggiated sustained""".split()

KEYS = [f"{n} {m}" for n in "C C# Db D Eb E F F# Gb G Ab A Bb B".split()
        for m in ("major", "minor")]
PLACES = """Berlin Detroit Chicago London Bristol Kingston Lagos Havana Rio Tokyo Osaka Seoul
Mumbai Cairo Istanbul Paris Lisbon Seville Nashville Memphis Reykjavik Oslo Manchester Glasgow
Dublin Amsterdam Brussels Vienna Prague Budapest Warsaw Helsinki Stockholm Copenhagen Montreal
Toronto Vancouver Seattle Portland Austin Atlanta Miami Bogota Lima Santiago Buenos-Aires
Johannesburg Nairobi Accra Dakar Marrakech Beirut Tehran Karachi Delhi Dhaka Bangkok Jakarta
Manila Shanghai Melbourne Auckland""".split()
DECADES = ["1960s", "1970s", "1980s", "1990s", "2000s", "2010s"]
SECTIONS = """intro verse chorus bridge breakdown build-up drop outro hook bassline groove melody
harmony rhythm counterpoint interlude refrain crescendo fade-in fade-out coda ostinato drone
riff lick fill turnaround cadence transition texture atmosphere soundscape motif theme""".split()
ACTIONS = """builds slowly, fades out gently, drops into a heavy groove, swells into a climax,
dissolves into silence, loops seamlessly, modulates upward, slows to a halt, stutters and
glitches, breathes with the sidechain, rises over rolling toms, answers the lead melody,
doubles the bassline an octave up, echoes across the stereo field, sparkles in the high
register, rumbles underneath everything, trades phrases with the drums, crackles like an old
record, shimmers behind the vocals, punches through the mix""".replace("\n", " ").split(", ")
PRODUCTION = """punchy crisp muddy boomy glassy velvety silky crunchy fuzzy grainy icy glossy
polished raw organic synthetic cavernous roomy dry wet breathy nasal reedy brassy metallic
woody percussive resonant hollow thick thin round sharp soft loud quiet fast slow rolling
pulsing throbbing twinkling sweeping rumbling chugging galloping shuffling stomping""".split()
USES = """a film trailer, a video game menu, a meditation session, a night drive, a rainy
afternoon, a workout, a podcast intro, a dance floor, a sunrise, a study session, a chase scene,
a lullaby""".replace("\n", " ").split(", ")


def _word(w: str) -> str:
    return w.replace("-", " ") if "-" in w and w not in ("lo-fi", "hi-fi", "k-pop", "j-rock") else w


def sentence(rng: random.Random) -> str:
    g, m, t = _word(rng.choice(GENRES)), rng.choice(MOODS), _word(rng.choice(TEXTURES))
    i1, i2 = _word(rng.choice(INSTRUMENTS)), _word(rng.choice(INSTRUMENTS))
    bpm, key, p = rng.randrange(60, 181), rng.choice(KEYS), rng.choice(PRODUCTION)
    forms = [
        f"{m} {g} track with {i1} and {i2}, {bpm} BPM, {key}",
        f"{g.capitalize()} loop, {t} {i1}, {m} mood, {bpm} bpm",
        f"A {m} {g} piece featuring {t} {i1} over {i2} in {key}",
        f"{bpm} BPM {g} beat inspired by {_word(rng.choice(PLACES))} in the {rng.choice(DECADES)}",
        f"{t.capitalize()} {i1} solo, {m}, slow tempo, {key}",
        f"Music for {rng.choice(USES)}: {m} {g} with {i1}, {i2} and {t} drums",
        f"{g} {i1} riff, {m} and {t}, {bpm}bpm, {rng.randrange(1, 31)} seconds",
        f"{m.capitalize()} {g} at {bpm} BPM. {i1.capitalize()} melody, {i2} accompaniment.",
        f"The {_word(rng.choice(SECTIONS))} {rng.choice(ACTIONS)} while a {p} {i1} plays",
        f"{p.capitalize()} {i1} {_word(rng.choice(SECTIONS))}, {m} {g}, {key}, {bpm} BPM",
        f"{_word(rng.choice(PLACES))} {g} {_word(rng.choice(SECTIONS))} with {p} {i2} that "
        f"{rng.choice(ACTIONS)}",
    ]
    return rng.choice(forms)


def corpus(seed: int = SEED, n: int = N_LINES) -> list[str]:
    rng = random.Random(seed)
    return [sentence(rng) for _ in range(n)]


def train() -> bytes:
    """The serialized model; no file paths end up in it (sentence_iterator, model_writer)."""
    spm.set_random_generator_seed(SEED)
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus()),
        model_writer=buf,
        model_type="unigram",
        vocab_size=VOCAB_SIZE,
        character_coverage=1.0,
        normalization_rule_name="nmt_nfkc",  # T5's spiece.model uses this rule too
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
        pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>",
        num_threads=1,
        shuffle_input_sentence=False,
        input_sentence_size=0,
        minloglevel=2,
    )
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--check", action="store_true", help="compare with --out instead of writing")
    args = ap.parse_args(argv)
    data = train()
    if args.check:
        same = args.out.is_file() and args.out.read_bytes() == data
        print(f"{args.out}: {'identical' if same else 'DIFFERS from a fresh training run'}")
        return 0 if same else 1
    args.out.write_bytes(data)
    print(f"wrote {args.out} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
