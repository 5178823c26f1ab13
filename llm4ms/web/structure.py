"""Structure drawings for hit tables: SVG made server-side with RDKit, so the page needs no JS chemistry."""
from __future__ import annotations

from functools import lru_cache
from typing import Optional


@lru_cache(maxsize=4096)
def structure_svg(smiles: str, width: int = 240, height: int = 180) -> Optional[str]:
    """An SVG drawing of `smiles`, or None when RDKit cannot parse it (the page then shows no picture)."""
    from rdkit import Chem, RDLogger
    from rdkit.Chem import rdDepictor
    from rdkit.Chem.Draw import rdMolDraw2D

    RDLogger.DisableLog("rdApp.*")  # unparseable SMILES are expected in libraries; we report None instead
    try:
        mol = Chem.MolFromSmiles(smiles)
    finally:
        RDLogger.EnableLog("rdApp.*")
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    rdDepictor.SetPreferCoordGen(True)
    rdDepictor.Compute2DCoords(mol)
    drawer = rdMolDraw2D.MolDraw2DSVG(width, height)
    options = drawer.drawOptions()
    options.clearBackground = False
    options.padding = 0.08
    rdMolDraw2D.PrepareAndDrawMolecule(drawer, mol)
    drawer.FinishDrawing()
    return drawer.GetDrawingText()
