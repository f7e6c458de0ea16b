package testenv

// InferenceServiceCRD is a minimal InferenceService CRD (serving.kserve.io,
// v1beta1): enough for an API server to store InferenceServices and their
// status, with KServe's Ready column. KServe itself is never installed;
// whatever plays its controller sets the status.
const InferenceServiceCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: inferenceservices.serving.kserve.io}
spec:
  group: serving.kserve.io
  names: {kind: InferenceService, plural: inferenceservices, singular: inferenceservice, shortNames: [isvc]}
  scope: Namespaced
  versions:
    - name: v1beta1
      served: true
      storage: true
      subresources: {status: {}}
      additionalPrinterColumns:
        - {name: Ready, type: string, jsonPath: ".status.conditions[?(@.type=='Ready')].status"}
        - {name: Version, type: string, jsonPath: ".metadata.annotations.ferry\\.dev/model-version"}
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`
