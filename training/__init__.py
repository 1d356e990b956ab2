"""FaceSim training: dataset building, triplet training, evaluation, export and Hub push (CLIs)."""
