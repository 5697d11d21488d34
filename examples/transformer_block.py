"""A Transformer encoder block built from nn.Linear, trained to reverse short sequences.

Multi-head self-attention with ``Linear(d, d, bias=False)`` Q/K/V projections and
an output projection, a feed-forward MLP, residual connections and LayerNorm
(post-norm, as in the original Transformer). Input: random tokens; target at
each position: the token at the mirrored position.

Run: python examples/transformer_block.py [--fast]
"""
import argparse
import math

import linea
from linea import nn


class MultiHeadSelfAttention(nn.Module):
    def __init__(self, d_model: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, d_model // heads
        self.q_proj = nn.Linear(d_model, d_model, bias=False)
        self.k_proj = nn.Linear(d_model, d_model, bias=False)
        self.v_proj = nn.Linear(d_model, d_model, bias=False)
        self.out_proj = nn.Linear(d_model, d_model)

    def split(self, x):                      # (B, T, d) -> (B, heads, T, head_dim)
        batch, length, _ = x.shape
        return x.reshape(batch, length, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x):
        q, k, v = self.split(self.q_proj(x)), self.split(self.k_proj(x)), self.split(self.v_proj(x))
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
        mixed = nn.functional.softmax(scores, dim=-1) @ v
        batch, _, length, _ = mixed.shape
        return self.out_proj(mixed.transpose(1, 2).reshape(batch, length, -1))


class EncoderBlock(nn.Module):
    def __init__(self, d_model=32, heads=4, hidden=64):
        super().__init__()
        self.attention = MultiHeadSelfAttention(d_model, heads)
        self.norm1 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, hidden), nn.GELU(), nn.Linear(hidden, d_model))
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, x):
        x = self.norm1(x + self.attention(x))
        return self.norm2(x + self.mlp(x))


class Reverser(nn.Module):
    def __init__(self, vocab=8, length=6, d_model=32):
        super().__init__()
        self.vocab = vocab
        self.embed = nn.Linear(vocab, d_model, bias=False)          # one-hot @ W: an embedding
        self.position = nn.Parameter(linea.randn(length, d_model) * 0.1)
        self.block = EncoderBlock(d_model)
        self.head = nn.Linear(d_model, vocab)

    def forward(self, tokens):
        one_hot = (tokens.unsqueeze(-1) == linea.arange(self.vocab)).float()
        return self.head(self.block(self.embed(one_hot) + self.position))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fast", action="store_true", help="a few steps, for the test suite")
    args = parser.parse_args(argv)
    vocab, length = 8, 6
    linea.manual_seed(0)
    model = Reverser(vocab, length)
    optimizer = linea.optim.Adam(model.parameters(), lr=3e-3)
    generator = linea.Generator().manual_seed(1)
    steps, losses = (40 if args.fast else 800), []
    for step in range(steps):
        tokens = linea.randint(0, vocab, (64, length), generator=generator)
        target = linea.tensor(tokens.numpy()[:, ::-1].copy())
        logits = model(tokens)
        loss = nn.functional.cross_entropy(logits.reshape(-1, vocab), target.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    tokens = linea.randint(0, vocab, (500, length), generator=generator)
    with linea.no_grad():
        predicted = model(tokens).argmax(-1).numpy()
    accuracy = float((predicted == tokens.numpy()[:, ::-1]).mean())
    print(f"{sum(p.numel() for p in model.parameters()):,} parameters; loss "
          f"{losses[0]:.3f} -> {sum(losses[-10:]) / 10:.3f}; token accuracy {accuracy:.1%}")
    return {"first_loss": losses[0], "final_loss": sum(losses[-10:]) / 10, "accuracy": accuracy}


if __name__ == "__main__":
    main()
