"""BERT and the families that share its layout and attention code: RoBERTa, XLM-RoBERTa, CamemBERT, ERNIE."""

from tinydistill.families.base import Family

FAMILY = Family("bert", ("bert", "roberta", "xlm-roberta", "camembert", "ernie"))
