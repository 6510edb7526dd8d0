"""Solutions to the exercises of the notebooks in docs/tutorials, one module per notebook.

Try an exercise before you read its solution here: the notebooks hold only stubs, and
``numcnn.teach``'s checks tell you when your own answer is right. tests/test_exercises.py runs
every check on these answers (each must pass) and on wrong ones (each must be refused).
"""
